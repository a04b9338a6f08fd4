-- Late readings: a reading captured before a session ended is part of that session's clinical record even when it reaches
-- the database after the end. Pi agents batch once a second and spool through outages, and the remote writer batches too,
-- so the last 1-3 s of a session (or hours of it, after an outage) routinely arrive just after the clinician ends it.
--
-- The rule, for every write path (RLS on the table, public.insert_readings, public.insert_remote_readings):
--   a writer allowed on a session may add readings to it while it is live, or after it has ended when
--     * every new reading was captured at or before ended_at + app.late_reading_tolerance() (clock skew between the
--       device that stamps captured_at and the database that stamps ended_at), and
--     * the insert arrives no later than ended_at + app.late_reading_grace() (spooled readings after an outage).
--   Anything captured after the end (+ tolerance) is still refused ('session_not_live:'); so is everything once the
--   grace period is over. A scheduled session takes nothing. Who may write where is unchanged.
-- Readings already stored (same id, same session) are never refused: a retried batch stays idempotent whatever the
-- session's state, so an agent whose acknowledgement was lost does not file stored readings as rejected.
-- The Python store (store/validation.py: LATE_READING_TOLERANCE, LATE_READING_GRACE) carries the same constants; a
-- test checks that the two agree.
-- Unchanged: "one live session per device" (sessions_device_live_idx) and live_session_for_device; public.session_for_token
-- still refuses an ended session or an expired link (the patient's page must say the session is over).


CREATE OR REPLACE FUNCTION app.late_reading_tolerance() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '5 seconds' $$;

CREATE OR REPLACE FUNCTION app.late_reading_grace() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '24 hours' $$;

-- Whether a session in this state takes, now, a reading captured at p_captured_at. Used by the readings_insert policy
-- row by row; the functions below check the same thing per batch to raise clear errors.
CREATE OR REPLACE FUNCTION app.session_takes_reading(p_status text, p_ended_at timestamptz, p_captured_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        p_status = 'live'
        OR (p_status = 'ended'
            AND p_captured_at <= p_ended_at + app.late_reading_tolerance()
            AND now() <= p_ended_at + app.late_reading_grace()),
        false)
$$;

-- Why a session closed at p_closed_at refuses new readings whose latest capture time is p_latest (NULL: it takes them).
-- The message has no prefix; callers add 'session_not_live:' or turn it into 'invalid_token'.
CREATE OR REPLACE FUNCTION app.late_readings_refusal(p_what text, p_closed_at timestamptz, p_latest timestamptz)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN now() > p_closed_at + app.late_reading_grace() THEN
            format('%s at %s, more than %s ago; readings captured before the end are accepted for %s after it',
                   p_what, p_closed_at, app.late_reading_grace(), app.late_reading_grace())
        WHEN p_latest > p_closed_at + app.late_reading_tolerance() THEN
            format('%s at %s; a reading captured at %s is after the end (tolerance %s)',
                   p_what, p_closed_at, p_latest, app.late_reading_tolerance())
    END
$$;

-- The readings of a batch that are not stored yet in their session (as far as the caller can see them). Only these are
-- checked against the session's state and inserted: a stored reading is a retry, already part of the record.
CREATE OR REPLACE FUNCTION app.unstored_readings(p_readings jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(jsonb_agg(e.r ORDER BY e.ord), '[]'::jsonb)
    FROM jsonb_array_elements(p_readings) WITH ORDINALITY AS e(r, ord)
    WHERE NOT EXISTS (SELECT 1 FROM public.readings x
                      WHERE x.id = (e.r ->> 'id')::uuid AND x.session_id = (e.r ->> 'session_id')::uuid)
$$;

REVOKE ALL ON FUNCTION app.late_reading_tolerance(), app.late_reading_grace(),
    app.session_takes_reading(text, timestamptz, timestamptz), app.late_readings_refusal(text, timestamptz, timestamptz),
    app.unstored_readings(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.late_reading_tolerance(), app.late_reading_grace(),
    app.session_takes_reading(text, timestamptz, timestamptz), app.late_readings_refusal(text, timestamptz, timestamptz),
    app.unstored_readings(jsonb) TO anon, authenticated, service_role;


-- readings: inserted by the device assigned to the session, or by the session's clinician (recorded video), while it is
-- live or, for readings captured before its end, within the grace period after it. Replaces the live-only policy of
-- 20261125090100_row_level_security.sql. (`session_id` and `captured_at` are the new row's: sessions has neither.)
DROP POLICY readings_insert ON public.readings;
CREATE POLICY readings_insert ON public.readings FOR INSERT TO authenticated
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.sessions s
        WHERE s.id = session_id AND app.session_takes_reading(s.status, s.ended_at, captured_at)
          AND ((s.device_id IS NOT NULL AND s.device_id = app.device_id())
               OR s.clinician_id = app.clinician_id() OR app.is_admin())));


-- For clinicians and devices: RLS (readings_insert) decides who may write where; this adds clear errors and skips
-- readings already stored (so a retry after the grace period is a no-op, not a refusal).
CREATE OR REPLACE FUNCTION public.insert_readings(p_readings jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    fresh jsonb;
    sid uuid;
    latest timestamptz;
    current_status text;
    current_end timestamptz;
    refusal text;
BEGIN
    IF jsonb_typeof(p_readings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid_input: readings must be a JSON array';
    END IF;
    fresh := app.unstored_readings(p_readings);
    FOR sid, latest IN
        SELECT (r ->> 'session_id')::uuid, max((r ->> 'captured_at')::timestamptz)
        FROM jsonb_array_elements(fresh) r GROUP BY 1 ORDER BY 1
    LOOP
        SELECT s.status, s.ended_at INTO current_status, current_end FROM public.sessions s WHERE s.id = sid;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not_found: session %', sid;
        ELSIF current_status = 'ended' THEN
            refusal := app.late_readings_refusal(format('session %s ended', sid), current_end, latest);
            IF refusal IS NOT NULL THEN
                RAISE EXCEPTION 'session_not_live: %', refusal;
            END IF;
        ELSIF current_status <> 'live' THEN
            RAISE EXCEPTION 'session_not_live: session % is %', sid, current_status;
        END IF;
    END LOOP;
    RETURN app.insert_reading_rows(fresh);
END
$$;


-- For the patient's browser (role anon): readings go only into the token's session. The token opens a writing window
-- that closes when the session ends or the link expires, whichever comes first (closed_at). While it is open, readings
-- are taken as before. After it closes, readings captured by closed_at (+ tolerance) are still taken for the grace
-- period: the link's expiry limits when the patient can stream, not whether what they streamed in time is kept.
-- Errors: unknown token, or closed for longer than the grace period -> 'invalid_token' (the link is dead for good);
-- a reading captured after the close -> 'session_not_live:' when the session ended, 'invalid_token' when only the
-- link expired (the session itself is still live for the clinician).
CREATE OR REPLACE FUNCTION public.insert_remote_readings(p_token text, p_readings jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    sid uuid;
    current_status text;
    current_end timestamptz;
    expires timestamptz;
    closed_at timestamptz;
    fresh jsonb;
    latest timestamptz;
    refusal text;
BEGIN
    SELECT s.id, s.status, s.ended_at, s.join_expires_at INTO sid, current_status, current_end, expires
    FROM public.sessions s
    WHERE p_token IS NOT NULL AND char_length(p_token) BETWEEN 16 AND 200
      AND s.join_token_hash = encode(sha256(convert_to(p_token, 'UTF8')), 'hex');
    IF NOT FOUND OR current_status = 'scheduled' THEN
        RAISE EXCEPTION 'invalid_token';
    END IF;
    closed_at := CASE WHEN current_status = 'ended' THEN least(current_end, expires) ELSE expires END;
    IF closed_at IS NULL OR now() > closed_at + app.late_reading_grace() THEN
        RAISE EXCEPTION 'invalid_token';
    END IF;
    IF jsonb_typeof(p_readings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid_input: readings must be a JSON array';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_readings) r
               WHERE (r ->> 'session_id') IS DISTINCT FROM sid::text OR (r ->> 'source') IS DISTINCT FROM 'remote') THEN
        RAISE EXCEPTION 'invalid_input: remote readings must be for the token''s session with source remote';
    END IF;
    fresh := app.unstored_readings(p_readings);
    IF now() >= closed_at THEN
        SELECT max((r ->> 'captured_at')::timestamptz) INTO latest FROM jsonb_array_elements(fresh) r;
        refusal := app.late_readings_refusal(
            CASE WHEN current_status = 'ended' AND (expires IS NULL OR current_end <= expires) THEN format('session %s ended', sid)
                 ELSE format('the join link of session %s expired', sid) END,
            closed_at, latest);
        IF refusal IS NOT NULL THEN
            IF current_status = 'ended' THEN
                RAISE EXCEPTION 'session_not_live: %', refusal;
            END IF;
            RAISE EXCEPTION 'invalid_token';
        END IF;
    END IF;
    RETURN app.insert_reading_rows(fresh);
END
$$;

-- CREATE OR REPLACE keeps the grants of 20261125090200_reading_functions.sql; restated so this file reads on its own.
REVOKE ALL ON FUNCTION public.insert_readings(jsonb), public.insert_remote_readings(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.insert_readings(jsonb) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.insert_remote_readings(text, jsonb) TO anon, authenticated, service_role;
