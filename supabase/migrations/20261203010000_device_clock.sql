-- One session clock: a device's clock is measured and corrected, so "Stop means stop" (docs/storage.md, "Late readings").
--
-- Before this, a reading captured up to 5 s after the end of a session (app.late_reading_tolerance()) was still stored:
-- the tolerance absorbed the skew between the Pi's clock (which stamps captured_at) and the database's (which stamps
-- ended_at), and with it the last seconds the agent recorded after the clinician pressed Stop (the dashboard said 118
-- readings, the review 133). Now:
--   * public.device_heartbeat(p_clock_offset_ms) returns the database's clock (clock_timestamp(): the moment of the call,
--     not the start of the transaction) so the agent can measure its offset NTP-style (device time before and after the
--     call, the midpoint against this answer, the sample of the smallest round trip of the last few), and it stores the
--     offset the device measured last (database time - device time, in ms; NULL until one was measured; a heartbeat
--     without one keeps the stored value) on the device's own row, for the Devices page.
--   * The agent stamps every reading in database time (device clock + offset) when it captures it, and the app does the
--     same for the patient's browser (app/browser_analysis.py). So app.late_reading_tolerance() is zero: a reading
--     captured after ended_at, in database time, is refused. Late *arrival* of readings captured in time is unchanged
--     (app.late_reading_grace(), 24 h).
-- Least privilege is unchanged: psya_device still holds no table privilege; the only way a device touches its row is
-- this SECURITY DEFINER function, and only its own row (app.calling_device()). Clinicians read the two new columns.
-- store/validation.py carries the same constants (LATE_READING_TOLERANCE, CLOCK_OFFSET_LIMIT); a test checks they agree.


ALTER TABLE public.devices
    ADD COLUMN clock_offset_ms integer CHECK (clock_offset_ms BETWEEN -86400000 AND 86400000),
    ADD COLUMN clock_measured_at timestamptz;
GRANT SELECT (clock_offset_ms, clock_measured_at) ON public.devices TO authenticated;

CREATE FUNCTION app.device_clock_offset_limit() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '24 hours' $$;
REVOKE ALL ON FUNCTION app.device_clock_offset_limit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.device_clock_offset_limit() TO anon, authenticated, service_role;

-- The old heartbeat took nothing and returned nothing; a new signature replaces it (a call without the argument, as
-- `SELECT device_heartbeat()` or PostgREST's `{}`, still works: the offset defaults to NULL, "not measured").
DROP FUNCTION public.device_heartbeat();

CREATE FUNCTION public.device_heartbeat(p_clock_offset_ms integer DEFAULT NULL) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me uuid := app.calling_device();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'permission_denied: not a registered device';
    END IF;
    IF p_clock_offset_ms IS NOT NULL
       AND abs(p_clock_offset_ms::bigint) > extract(epoch FROM app.device_clock_offset_limit()) * 1000 THEN
        RAISE EXCEPTION 'invalid_input: a clock offset of % ms is more than % off: set the device''s clock',
            p_clock_offset_ms, app.device_clock_offset_limit();
    END IF;
    UPDATE public.devices
    SET last_heartbeat = now(),
        clock_offset_ms = coalesce(p_clock_offset_ms, clock_offset_ms),
        clock_measured_at = CASE WHEN p_clock_offset_ms IS NULL THEN clock_measured_at ELSE now() END
    WHERE id = me;
    RETURN clock_timestamp();
END
$$;
REVOKE ALL ON FUNCTION public.device_heartbeat(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.device_heartbeat(integer) TO psya_device;


-- Stop means stop: nothing captured after the end is taken (the rule of 20261125100000_late_readings.sql, with zero
-- tolerance). app.session_takes_reading (the readings_insert policy), app.late_readings_refusal (insert_readings,
-- device_insert_readings, insert_remote_readings) read this function at run time.
CREATE OR REPLACE FUNCTION app.late_reading_tolerance() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '0' $$;

-- The same refusal, without "(tolerance 00:00:00)" in its message.
CREATE OR REPLACE FUNCTION app.late_readings_refusal(p_what text, p_closed_at timestamptz, p_latest timestamptz)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN now() > p_closed_at + app.late_reading_grace() THEN
            format('%s at %s, more than %s ago; readings captured before the end are accepted for %s after it',
                   p_what, p_closed_at, app.late_reading_grace(), app.late_reading_grace())
        WHEN p_latest > p_closed_at + app.late_reading_tolerance() THEN
            format('%s at %s; a reading captured at %s is after the end', p_what, p_closed_at, p_latest)
    END
$$;

-- Unchanged, documented here: app.reading_clock_skew() (5 minutes, 20261202010100_reading_time_bounds.sql) stays as the
-- sanity bound on "not before the session started, not in the future". It is not a tolerance of the session's end: it
-- covers what the correction cannot, a device that records before its first successful heartbeat (`--session` while the
-- database is unreachable: offset 0), a clock stepped between two heartbeats, and the app server's own clock.
