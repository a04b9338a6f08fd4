-- Late readings, fast path. 20261125100000_late_readings.sql looked up every reading of every batch (is it stored
-- already?) before inserting, which made a live session's large batches ~50% slower. Only a session that is no longer
-- live needs that lookup: a live one takes every reading, and ON CONFLICT (id) DO NOTHING already skips stored ones. So
-- the lookup now runs only when some session of the batch is not live, or the join link's window has closed.
-- The rule itself is unchanged (see 20261125100000_late_readings.sql and docs/storage.md, "Late readings").


CREATE OR REPLACE FUNCTION public.insert_readings(p_readings jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    fresh jsonb;
    sid uuid;
    latest timestamptz;
    current_status text;
    current_end timestamptz;
    all_live boolean := true;
    refusal text;
BEGIN
    IF jsonb_typeof(p_readings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid_input: readings must be a JSON array';
    END IF;
    FOR sid IN SELECT DISTINCT (r ->> 'session_id')::uuid FROM jsonb_array_elements(p_readings) r ORDER BY 1 LOOP
        SELECT s.status INTO current_status FROM public.sessions s WHERE s.id = sid;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not_found: session %', sid;
        END IF;
        all_live := all_live AND current_status = 'live';
    END LOOP;
    IF all_live THEN
        RETURN app.insert_reading_rows(p_readings);
    END IF;
    -- Some session is no longer live: readings already stored are retries (never refused); the others must have been
    -- captured in time and arrive within the grace period.
    fresh := app.unstored_readings(p_readings);
    FOR sid, latest IN
        SELECT (r ->> 'session_id')::uuid, max((r ->> 'captured_at')::timestamptz)
        FROM jsonb_array_elements(fresh) r GROUP BY 1 ORDER BY 1
    LOOP
        SELECT s.status, s.ended_at INTO current_status, current_end FROM public.sessions s WHERE s.id = sid;
        IF current_status = 'ended' THEN
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
    -- the token's writing window closes when the session ends or the link expires, whichever comes first
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
    IF now() < closed_at THEN
        RETURN app.insert_reading_rows(p_readings);  -- the window is open: as before
    END IF;
    fresh := app.unstored_readings(p_readings);
    SELECT max((r ->> 'captured_at')::timestamptz) INTO latest FROM jsonb_array_elements(fresh) r;
    refusal := app.late_readings_refusal(
        CASE WHEN current_status = 'ended' AND (expires IS NULL OR current_end <= expires)
             THEN format('session %s ended', sid) ELSE format('the join link of session %s expired', sid) END,
        closed_at, latest);
    IF refusal IS NOT NULL THEN
        IF current_status = 'ended' THEN
            RAISE EXCEPTION 'session_not_live: %', refusal;
        END IF;
        RAISE EXCEPTION 'invalid_token';
    END IF;
    RETURN app.insert_reading_rows(fresh);
END
$$;

REVOKE ALL ON FUNCTION public.insert_readings(jsonb), public.insert_remote_readings(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.insert_readings(jsonb) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.insert_remote_readings(text, jsonb) TO anon, authenticated, service_role;
