-- Row-level security. Who is acting comes from the JWT claims PostgREST (or the store, over a direct connection) sets:
--   clinician: {"role": "authenticated", "actor": "clinician", "sub": "<clinician id>", "app_role": "clinician"|"admin"}
--   device:    {"role": "authenticated", "actor": "device", "sub": "<device id>"}
--   remote patient: role anon, no claims; may only call the SECURITY DEFINER functions below with a join token.
--   service_role bypasses RLS (login, device authentication, bootstrap).

CREATE SCHEMA IF NOT EXISTS app;
GRANT USAGE ON SCHEMA app TO anon, authenticated, service_role;

CREATE OR REPLACE FUNCTION app.claims() RETURNS jsonb
LANGUAGE sql STABLE AS $$ SELECT coalesce(auth.jwt(), '{}'::jsonb) $$;

CREATE OR REPLACE FUNCTION app.actor_kind() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT app.claims() ->> 'actor' $$;

CREATE OR REPLACE FUNCTION app.clinician_id() RETURNS uuid
LANGUAGE sql STABLE AS $$ SELECT CASE WHEN app.actor_kind() = 'clinician' THEN auth.uid() END $$;

CREATE OR REPLACE FUNCTION app.device_id() RETURNS uuid
LANGUAGE sql STABLE AS $$ SELECT CASE WHEN app.actor_kind() = 'device' THEN auth.uid() END $$;

CREATE OR REPLACE FUNCTION app.is_admin() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(app.actor_kind() = 'clinician' AND app.claims() ->> 'app_role' = 'admin', false)
$$;

-- How the audit log names the current actor; policies make sure nobody writes audit rows in another actor's name.
CREATE OR REPLACE FUNCTION app.actor_label() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN app.actor_kind() IN ('clinician', 'device') THEN app.actor_kind() || ':' || auth.uid()::text END
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app TO anon, authenticated, service_role;

ALTER TABLE public.clinicians ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.record_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.annotations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;

-- clinicians: yourself; admins everyone. Creating accounts and login bookkeeping are service_role only.
CREATE POLICY clinicians_select ON public.clinicians FOR SELECT TO authenticated
    USING (id = app.clinician_id() OR app.is_admin());

-- patients: the owning clinician; admins all.
CREATE POLICY patients_select ON public.patients FOR SELECT TO authenticated
    USING (clinician_id = app.clinician_id() OR app.is_admin());
CREATE POLICY patients_insert ON public.patients FOR INSERT TO authenticated
    WITH CHECK (clinician_id = app.clinician_id());
CREATE POLICY patients_update ON public.patients FOR UPDATE TO authenticated
    USING (clinician_id = app.clinician_id() OR app.is_admin())
    WITH CHECK (clinician_id = app.clinician_id() OR app.is_admin());

-- medical record entries: whoever sees the patient (the subquery is itself filtered by patients_select).
CREATE POLICY record_entries_select ON public.record_entries FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.patients p WHERE p.id = patient_id));
CREATE POLICY record_entries_insert ON public.record_entries FOR INSERT TO authenticated
    WITH CHECK (author_id = app.clinician_id() AND EXISTS (SELECT 1 FROM public.patients p WHERE p.id = patient_id));

-- devices: every clinician sees the devices (rooms are shared); any clinician registers one; a device stamps its own heartbeat.
CREATE POLICY devices_select ON public.devices FOR SELECT TO authenticated
    USING (app.clinician_id() IS NOT NULL OR id = app.device_id());
CREATE POLICY devices_insert ON public.devices FOR INSERT TO authenticated
    WITH CHECK (app.clinician_id() IS NOT NULL AND created_by = app.clinician_id());
CREATE POLICY devices_heartbeat ON public.devices FOR UPDATE TO authenticated
    USING (id = app.device_id()) WITH CHECK (id = app.device_id());

-- sessions: the owning clinician (admins all); a device sees the sessions assigned to it. A session can only be created
-- for a visible, consenting, non-archived patient.
CREATE POLICY sessions_select ON public.sessions FOR SELECT TO authenticated
    USING (clinician_id = app.clinician_id() OR app.is_admin() OR (device_id IS NOT NULL AND device_id = app.device_id()));
CREATE POLICY sessions_insert ON public.sessions FOR INSERT TO authenticated
    WITH CHECK (
        clinician_id = app.clinician_id()
        AND EXISTS (SELECT 1 FROM public.patients p
                    WHERE p.id = patient_id AND p.consent_facial_analysis AND NOT p.archived));
CREATE POLICY sessions_update ON public.sessions FOR UPDATE TO authenticated
    USING (clinician_id = app.clinician_id() OR app.is_admin())
    WITH CHECK (clinician_id = app.clinician_id() OR app.is_admin());

-- readings: read with the session; inserted by the device assigned to a live session, or by the session's clinician
-- (recorded video) while it is live. Remote patients go through public.insert_remote_readings(). Never updated.
-- A device may read back the readings of sessions assigned to it: PostgreSQL checks SELECT policies against the
-- existing row when INSERT ... ON CONFLICT DO NOTHING skips a duplicate, which is how retries stay idempotent.
CREATE POLICY readings_select ON public.readings FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id
                   AND (s.clinician_id = app.clinician_id() OR app.is_admin()
                        OR (s.device_id IS NOT NULL AND s.device_id = app.device_id()))));
CREATE POLICY readings_insert ON public.readings FOR INSERT TO authenticated
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.sessions s
        WHERE s.id = session_id AND s.status = 'live'
          AND ((s.device_id IS NOT NULL AND s.device_id = app.device_id())
               OR s.clinician_id = app.clinician_id() OR app.is_admin())));

-- annotations: with the session, authored by the acting clinician.
CREATE POLICY annotations_select ON public.annotations FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id
                   AND (s.clinician_id = app.clinician_id() OR app.is_admin())));
CREATE POLICY annotations_insert ON public.annotations FOR INSERT TO authenticated
    WITH CHECK (author_id = app.clinician_id() AND EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id));

-- audit log: anyone authenticated appends in their own name; only admins read.
CREATE POLICY audit_insert ON public.audit_log FOR INSERT TO authenticated
    WITH CHECK (actor = app.actor_label());
CREATE POLICY audit_select ON public.audit_log FOR SELECT TO authenticated
    USING (app.is_admin());
