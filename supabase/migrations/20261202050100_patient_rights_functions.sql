-- Patients' data rights as database functions, called the same way by both store backends (direct SQL, or PostgREST
-- `rpc`): export (access and portability), erasure, and retention of ended sessions' readings. See docs/privacy.md.
--
-- Audit log: these functions only ever INSERT into audit_log, and audit rows hold ids only (actor label, action, entity,
-- entity id), never personal data. Erasure therefore leaves earlier audit rows as they are (their ids then point at
-- nothing) and appends one tombstone row: actor, 'erase', 'patient', the patient's id. An append-only, hash-chained
-- audit log stays verifiable.


-- Everything the database holds about a patient, except readings (fetched per session with public.readings_since, so an
-- export of years of sessions is paged, not one response). SECURITY INVOKER: row-level security decides what the caller
-- sees; a patient the caller cannot see is 'not_found:'. Secret columns (join token hashes) are left out.
CREATE FUNCTION public.patient_export(p_patient uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT jsonb_build_object(
        'patient', jsonb_build_object(
            'id', p.id, 'clinician_id', p.clinician_id, 'full_name', p.full_name, 'date_of_birth', p.date_of_birth,
            'diagnosis', p.diagnosis, 'in_treatment_since', p.in_treatment_since, 'contact', p.contact,
            'notes', p.notes, 'consent_facial_analysis', p.consent_facial_analysis, 'consent_date', p.consent_date,
            'consent_scope', p.consent_scope, 'archived', p.archived, 'created_at', p.created_at),
        'record_entries', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'id', r.id, 'patient_id', r.patient_id, 'entry_date', r.entry_date, 'kind', r.kind, 'text', r.text,
                'author_id', r.author_id, 'created_at', r.created_at) ORDER BY r.entry_date, r.created_at, r.id)
            FROM public.record_entries r WHERE r.patient_id = p.id), '[]'::jsonb),
        'consents', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'id', c.id, 'patient_id', c.patient_id, 'given', c.given, 'consent_date', c.consent_date,
                'scope', c.scope, 'text_version', c.text_version, 'consent_text', c.consent_text,
                'recorded_by', c.recorded_by, 'recorded_at', c.recorded_at) ORDER BY c.recorded_at, c.id)
            FROM public.consent_records c WHERE c.patient_id = p.id), '[]'::jsonb),
        'sessions', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'id', s.id, 'patient_id', s.patient_id, 'clinician_id', s.clinician_id, 'mode', s.mode,
                'status', s.status, 'device_id', s.device_id, 'started_at', s.started_at, 'ended_at', s.ended_at,
                'join_expires_at', s.join_expires_at, 'created_at', s.created_at) ORDER BY s.created_at, s.id)
            FROM public.sessions s WHERE s.patient_id = p.id), '[]'::jsonb),
        'annotations', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'id', a.id, 'session_id', a.session_id, 'at', a.at, 'text', a.text, 'author_id', a.author_id)
                ORDER BY a.at, a.created_at, a.id)
            FROM public.annotations a JOIN public.sessions s ON s.id = a.session_id
            WHERE s.patient_id = p.id), '[]'::jsonb),
        'reading_counts', coalesce((
            SELECT jsonb_object_agg(s.id::text, (SELECT count(*) FROM public.readings x WHERE x.session_id = s.id))
            FROM public.sessions s WHERE s.patient_id = p.id), '{}'::jsonb)
    ) INTO result
    FROM public.patients p WHERE p.id = p_patient;
    IF result IS NULL THEN
        RAISE EXCEPTION 'not_found: patient %', p_patient;
    END IF;
    RETURN result;
END
$$;


-- Erasure (right to be forgotten): admins only. The typed confirmation must be the patient's full name exactly. One
-- transaction: the readings, annotations, sessions, record entries, consent history and the patient row go, and one audit
-- tombstone is appended. Any other table that references patients or sessions must do so ON DELETE CASCADE (or the
-- erasure fails as a whole with a foreign-key error: nothing half-erased). Refused while a session is live: withdraw
-- consent first (which ends it), so no agent is writing into what is being erased.
-- p_actor: the admin's audit label, honoured for the service role only (the Supabase REST backend acts for its admin).
-- Returns how many rows of each kind were deleted.
CREATE FUNCTION public.erase_patient(p_patient uuid, p_confirmation text, p_actor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    is_service boolean := app.claims() ->> 'role' = 'service_role';
    actor text;
    name text;
    session_ids uuid[];
    n_readings bigint;
    n_annotations bigint;
    n_sessions bigint;
    n_records bigint;
    n_consents bigint;
BEGIN
    IF NOT (app.is_admin() OR is_service) THEN
        RAISE EXCEPTION 'only admins erase patients' USING ERRCODE = 'insufficient_privilege';
    END IF;
    actor := CASE WHEN is_service THEN coalesce(nullif(p_actor, ''), 'system') ELSE app.actor_label() END;
    SELECT p.full_name INTO name FROM public.patients p WHERE p.id = p_patient FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not_found: patient %', p_patient;
    END IF;
    IF p_confirmation IS DISTINCT FROM name THEN
        RAISE EXCEPTION 'invalid_input: the confirmation must be the patient''s full name, exactly as recorded';
    END IF;
    SELECT coalesce(array_agg(s.id), '{}') INTO session_ids FROM public.sessions s WHERE s.patient_id = p_patient;
    IF EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = ANY (session_ids) AND s.status = 'live') THEN
        RAISE EXCEPTION 'invalid_input: the patient has a live session; withdraw consent (which ends it) first';
    END IF;
    DELETE FROM public.readings WHERE session_id = ANY (session_ids);
    GET DIAGNOSTICS n_readings = ROW_COUNT;
    DELETE FROM public.annotations WHERE session_id = ANY (session_ids);
    GET DIAGNOSTICS n_annotations = ROW_COUNT;
    DELETE FROM public.sessions WHERE id = ANY (session_ids);
    GET DIAGNOSTICS n_sessions = ROW_COUNT;
    DELETE FROM public.record_entries WHERE patient_id = p_patient;
    GET DIAGNOSTICS n_records = ROW_COUNT;
    DELETE FROM public.consent_records WHERE patient_id = p_patient;
    GET DIAGNOSTICS n_consents = ROW_COUNT;
    DELETE FROM public.patients WHERE id = p_patient;
    INSERT INTO public.audit_log (actor, action, entity, entity_id) VALUES (actor, 'erase', 'patient', p_patient::text);
    RETURN jsonb_build_object('readings', n_readings, 'annotations', n_annotations, 'sessions', n_sessions,
                              'record_entries', n_records, 'consent_records', n_consents);
END
$$;


-- Retention: the readings of sessions that ended more than p_keep ago. With p_dry_run (the default) nothing is deleted;
-- either way the sessions concerned are returned with how many readings they hold (dry run) or had (deleted). Sessions,
-- annotations and the record stay: only the readings expire. p_keep must be at least the late-reading grace period, or
-- a late batch could re-create readings after they were deleted. Service role only (a cron job on the server).
CREATE FUNCTION public.apply_retention(p_keep interval, p_dry_run boolean DEFAULT true)
RETURNS TABLE (session_id uuid, patient_id uuid, ended_at timestamptz, readings bigint)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    expired record;
BEGIN
    IF p_keep IS NULL OR p_keep < app.late_reading_grace() THEN
        RAISE EXCEPTION 'invalid_input: readings must be kept at least % (the late-reading grace period)',
            app.late_reading_grace();
    END IF;
    FOR expired IN
        SELECT s.id, s.patient_id, s.ended_at FROM public.sessions s
        WHERE s.status = 'ended' AND s.ended_at < now() - p_keep
          AND EXISTS (SELECT 1 FROM public.readings r WHERE r.session_id = s.id)
        ORDER BY s.ended_at, s.id
        FOR UPDATE OF s
    LOOP
        session_id := expired.id;
        patient_id := expired.patient_id;
        ended_at := expired.ended_at;
        IF p_dry_run THEN
            SELECT count(*) INTO readings FROM public.readings r WHERE r.session_id = expired.id;
        ELSE
            DELETE FROM public.readings r WHERE r.session_id = expired.id;
            GET DIAGNOSTICS readings = ROW_COUNT;
            INSERT INTO public.audit_log (actor, action, entity, entity_id)
            VALUES ('system', 'retention_delete', 'session', expired.id::text);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION public.patient_export(uuid), public.erase_patient(uuid, text, text),
    public.apply_retention(interval, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.patient_export(uuid) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.erase_patient(uuid, text, text) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.apply_retention(interval, boolean) TO service_role;
