-- Bounded reading timestamps, for every write path (RLS table inserts, public.insert_readings, public.device_insert_readings,
-- public.insert_remote_readings). Before this, a Pi whose clock had not synced yet could file readings in 1971 or 2099,
-- and one 1971 reading turned a 60 s session into "55.0 years" in the review.
--
-- A reading of session s, captured at t, is accepted only when
--   * t >= s.started_at - app.reading_clock_skew()      (not before the session started; a Pi clock a little behind is fine)
--   * t <= now() + app.reading_clock_skew()             (not in the future; a Pi clock a little ahead is fine)
--     except for recorded_video sessions, whose readings are the video's timeline laid from started_at on:
--     t <= s.started_at + app.recorded_video_max_length()
--   * after the end: the late-reading rule (t <= ended_at + app.late_reading_tolerance(), 20261125100000_late_readings.sql)
-- Refused with 'invalid_input:' (the whole statement): a wrong clock is not something a retry fixes; agents keep such
-- readings in their spool's rejected table. The check is one statement-level trigger over the inserted rows, so it costs
-- one join per batch, and readings skipped by ON CONFLICT DO NOTHING (retries) are not checked again.
-- store/validation.py carries the same constants (READING_CLOCK_SKEW, RECORDED_VIDEO_MAX_LENGTH); a test checks they agree.


CREATE FUNCTION app.reading_clock_skew() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '5 minutes' $$;

CREATE FUNCTION app.recorded_video_max_length() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '24 hours' $$;

REVOKE ALL ON FUNCTION app.reading_clock_skew(), app.recorded_video_max_length() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.reading_clock_skew(), app.recorded_video_max_length() TO anon, authenticated, service_role;

CREATE FUNCTION app.check_reading_times() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.captured_at, n.session_id, s.started_at, s.mode,
           CASE WHEN s.started_at IS NULL THEN 'the session has not started'
                WHEN n.captured_at < s.started_at - app.reading_clock_skew() THEN
                    format('it is before the session started at %s', s.started_at)
                WHEN s.mode = 'recorded_video' THEN
                    format('it is more than %s after the video session started at %s', app.recorded_video_max_length(),
                           s.started_at)
                ELSE format('it is in the future (database time %s)', now())
           END AS why
    INTO bad
    FROM new_readings n JOIN public.sessions s ON s.id = n.session_id
    WHERE s.started_at IS NULL
       OR n.captured_at < s.started_at - app.reading_clock_skew()
       OR (s.mode <> 'recorded_video' AND n.captured_at > now() + app.reading_clock_skew())
       OR (s.mode = 'recorded_video' AND n.captured_at > s.started_at + app.recorded_video_max_length())
    ORDER BY n.captured_at
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'invalid_input: a reading of session % captured at % is refused: % (clock skew allowed: %)',
            bad.session_id, bad.captured_at, bad.why, app.reading_clock_skew();
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION app.check_reading_times() FROM PUBLIC;

CREATE TRIGGER readings_check_times AFTER INSERT ON public.readings
    REFERENCING NEW TABLE AS new_readings
    FOR EACH STATEMENT EXECUTE FUNCTION app.check_reading_times();
