-- A patient's export holds their sessions' event markers too (session_markers came with the clinical-analysis work,
-- after the export function): everything the database holds about the patient, nothing of anyone else. Erasure needs
-- no change: session_markers references sessions ON DELETE CASCADE.
CREATE OR REPLACE FUNCTION public.patient_export(p_patient uuid) RETURNS jsonb
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
        'markers', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'id', m.id, 'session_id', m.session_id, 'at', m.at, 'kind', m.kind, 'text', m.text,
                'author_id', m.author_id, 'created_at', m.created_at, 'updated_at', m.updated_at)
                ORDER BY m.at, m.created_at, m.id)
            FROM public.session_markers m JOIN public.sessions s ON s.id = m.session_id
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
