-- Clinician preferences (issue 12): the time zone each clinician reads session times in. A separate table rather than a
-- column on clinicians: clinicians' column privileges are deliberately narrow (password hashes, login bookkeeping), and a
-- clinician may change their own preferences and nobody else's. NULL time_zone: the deployment's default
-- (DEFAULT_TIME_ZONE setting). The app checks the name against the IANA database; the database bounds its length.

CREATE TABLE public.clinician_preferences (
    clinician_id uuid PRIMARY KEY REFERENCES public.clinicians (id) ON DELETE CASCADE,
    time_zone text CHECK (time_zone IS NULL OR (length(time_zone) BETWEEN 1 AND 64 AND time_zone ~ '^[A-Za-z0-9_+/-]+$')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE public.clinician_preferences ENABLE ROW LEVEL SECURITY;
GRANT ALL ON public.clinician_preferences TO service_role;
GRANT SELECT, INSERT, UPDATE (time_zone, updated_at) ON public.clinician_preferences TO authenticated;

-- Your own row only (admins included: a preference is personal).
CREATE POLICY clinician_preferences_select ON public.clinician_preferences FOR SELECT TO authenticated
    USING (clinician_id = app.clinician_id());
CREATE POLICY clinician_preferences_insert ON public.clinician_preferences FOR INSERT TO authenticated
    WITH CHECK (clinician_id = app.clinician_id());
CREATE POLICY clinician_preferences_update ON public.clinician_preferences FOR UPDATE TO authenticated
    USING (clinician_id = app.clinician_id()) WITH CHECK (clinician_id = app.clinician_id());
