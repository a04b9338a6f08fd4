-- Reading functions, called the same way by both store backends (direct SQL, or PostgREST `rpc`).
-- Errors are raised with a message prefix the store maps to its own types:
--   'not_found:' -> NotFound, 'session_not_live:' -> SessionNotLive, 'invalid_token' -> InvalidToken,
--   'invalid_input:' -> InvalidInput.

-- The insert itself (no checks): rows arrive as a JSON array of objects with the readings column names.
-- ON CONFLICT (id) DO NOTHING makes a retried batch idempotent; returns how many rows were new.
CREATE OR REPLACE FUNCTION app.insert_reading_rows(p_readings jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    inserted integer;
BEGIN
    INSERT INTO public.readings (id, session_id, captured_at, angry, disgust, fear, happy, sad, surprise, neutral,
                                 box_x, box_y, box_w, box_h, faces, source)
    SELECT r.id, r.session_id, r.captured_at, r.angry, r.disgust, r.fear, r.happy, r.sad, r.surprise, r.neutral,
           r.box_x, r.box_y, r.box_w, r.box_h, coalesce(r.faces, 1), r.source
    FROM jsonb_to_recordset(p_readings) AS r(
        id uuid, session_id uuid, captured_at timestamptz, angry float8, disgust float8, fear float8, happy float8,
        sad float8, surprise float8, neutral float8, box_x integer, box_y integer, box_w integer, box_h integer,
        faces smallint, source text)
    ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END
$$;

-- For clinicians and devices: RLS (readings_insert) decides who may write where; this adds clear errors.
CREATE OR REPLACE FUNCTION public.insert_readings(p_readings jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    sid uuid;
    current_status text;
BEGIN
    IF jsonb_typeof(p_readings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid_input: readings must be a JSON array';
    END IF;
    FOR sid IN SELECT DISTINCT (r ->> 'session_id')::uuid FROM jsonb_array_elements(p_readings) r ORDER BY 1 LOOP
        SELECT s.status INTO current_status FROM public.sessions s WHERE s.id = sid;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not_found: session %', sid;
        ELSIF current_status <> 'live' THEN
            RAISE EXCEPTION 'session_not_live: session % is %', sid, current_status;
        END IF;
    END LOOP;
    RETURN app.insert_reading_rows(p_readings);
END
$$;

-- The session a join token opens, if the token is known, unexpired and the session still live. Only the sha256 of the
-- token is stored, so the comparison is hash to hash.
CREATE OR REPLACE FUNCTION app.session_id_for_token(p_token text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.id FROM public.sessions s
    WHERE p_token IS NOT NULL AND char_length(p_token) BETWEEN 16 AND 200
      AND s.join_token_hash = encode(sha256(convert_to(p_token, 'UTF8')), 'hex')
      AND s.join_expires_at > now() AND s.status = 'live'
$$;
REVOKE ALL ON FUNCTION app.session_id_for_token(text) FROM PUBLIC;

-- For the patient's browser (role anon): the session behind a join token, without any secret column.
CREATE OR REPLACE FUNCTION public.session_for_token(p_token text)
RETURNS TABLE (id uuid, patient_id uuid, clinician_id uuid, mode text, status text, device_id uuid,
               started_at timestamptz, ended_at timestamptz, join_expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    sid uuid := app.session_id_for_token(p_token);
BEGIN
    IF sid IS NULL THEN
        RAISE EXCEPTION 'invalid_token';
    END IF;
    RETURN QUERY SELECT s.id, s.patient_id, s.clinician_id, s.mode, s.status, s.device_id, s.started_at, s.ended_at,
                        s.join_expires_at, s.created_at
                 FROM public.sessions s WHERE s.id = sid;
END
$$;

-- For the patient's browser: readings go only into the token's session (no RLS path exists for anon).
CREATE OR REPLACE FUNCTION public.insert_remote_readings(p_token text, p_readings jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    sid uuid := app.session_id_for_token(p_token);
BEGIN
    IF sid IS NULL THEN
        RAISE EXCEPTION 'invalid_token';
    END IF;
    IF jsonb_typeof(p_readings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid_input: readings must be a JSON array';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_readings) r
               WHERE (r ->> 'session_id') IS DISTINCT FROM sid::text OR (r ->> 'source') IS DISTINCT FROM 'remote') THEN
        RAISE EXCEPTION 'invalid_input: remote readings must be for the token''s session with source remote';
    END IF;
    RETURN app.insert_reading_rows(p_readings);
END
$$;

-- Readings inserted after `p_cursor` (the seq of the last one seen), oldest first. RLS applies (SECURITY INVOKER).
CREATE OR REPLACE FUNCTION public.readings_since(p_session uuid, p_cursor bigint DEFAULT 0, p_limit integer DEFAULT 10000)
RETURNS TABLE (id uuid, seq bigint, session_id uuid, captured_at timestamptz, angry float8, disgust float8, fear float8,
               happy float8, sad float8, surprise float8, neutral float8, box_x integer, box_y integer, box_w integer,
               box_h integer, faces smallint, source text)
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.seq, r.session_id, r.captured_at, r.angry, r.disgust, r.fear, r.happy, r.sad, r.surprise, r.neutral,
           r.box_x, r.box_y, r.box_w, r.box_h, r.faces, r.source
    FROM public.readings r
    WHERE r.session_id = p_session AND r.seq > coalesce(p_cursor, 0)
    ORDER BY r.seq
    LIMIT greatest(least(coalesce(p_limit, 10000), 100000), 1)
$$;

-- Per-session summary for review and progress pages. RLS applies (SECURITY INVOKER).
CREATE OR REPLACE FUNCTION public.session_aggregate(p_session uuid)
RETURNS TABLE (readings bigint, first_at timestamptz, last_at timestamptz, mean_angry float8, mean_disgust float8,
               mean_fear float8, mean_happy float8, mean_sad float8, mean_surprise float8, mean_neutral float8,
               dominant_counts jsonb)
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
    SELECT count(*), min(r.captured_at), max(r.captured_at),
           coalesce(avg(r.angry), 0), coalesce(avg(r.disgust), 0), coalesce(avg(r.fear), 0), coalesce(avg(r.happy), 0),
           coalesce(avg(r.sad), 0), coalesce(avg(r.surprise), 0), coalesce(avg(r.neutral), 0),
           coalesce((SELECT jsonb_object_agg(d.dominant, d.n)
                     FROM (SELECT r2.dominant, count(*) AS n FROM public.readings r2
                           WHERE r2.session_id = p_session GROUP BY r2.dominant) d), '{}'::jsonb)
    FROM public.readings r
    WHERE r.session_id = p_session
$$;

REVOKE ALL ON FUNCTION public.insert_readings(jsonb), public.readings_since(uuid, bigint, integer),
    public.session_aggregate(uuid), public.session_for_token(text), public.insert_remote_readings(text, jsonb)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.insert_readings(jsonb), public.readings_since(uuid, bigint, integer),
    public.session_aggregate(uuid) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.session_for_token(text), public.insert_remote_readings(text, jsonb)
    TO anon, authenticated, service_role;
REVOKE ALL ON FUNCTION app.insert_reading_rows(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.insert_reading_rows(jsonb) TO authenticated, service_role;
