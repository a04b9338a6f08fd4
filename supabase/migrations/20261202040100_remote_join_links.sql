-- Remote join links that can be shown again (issue 12). The database keeps only the token's hash for lookup (as before);
-- the link itself is kept as ciphertext the app encrypts with its own key (derived from COOKIE_KEY: app/links.py), so
-- the clinician can see it again after a reload while the database alone cannot reveal a working link. "New link"
-- replaces the session's token hash (the old link stops working at once) and the ciphertext.

CREATE TABLE public.remote_join_links (
    session_id uuid PRIMARY KEY REFERENCES public.sessions (id) ON DELETE CASCADE,
    clinician_id uuid NOT NULL REFERENCES public.clinicians (id),
    ciphertext text NOT NULL CHECK (length(ciphertext) BETWEEN 1 AND 2000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE public.remote_join_links ENABLE ROW LEVEL SECURITY;
GRANT ALL ON public.remote_join_links TO service_role;
GRANT SELECT, INSERT, UPDATE (ciphertext, updated_at) ON public.remote_join_links TO authenticated;

-- The clinician of the (remote) session only; admins do not read other clinicians' links.
CREATE POLICY remote_join_links_select ON public.remote_join_links FOR SELECT TO authenticated
    USING (clinician_id = app.clinician_id());
CREATE POLICY remote_join_links_insert ON public.remote_join_links FOR INSERT TO authenticated
    WITH CHECK (clinician_id = app.clinician_id() AND EXISTS (
        SELECT 1 FROM public.sessions s WHERE s.id = session_id AND s.clinician_id = app.clinician_id() AND s.mode = 'remote'));
CREATE POLICY remote_join_links_update ON public.remote_join_links FOR UPDATE TO authenticated
    USING (clinician_id = app.clinician_id()) WITH CHECK (clinician_id = app.clinician_id());

-- Rotating a link writes the session's token hash (sessions_update already limits rows to the clinician's own).
GRANT UPDATE (join_token_hash) ON public.sessions TO authenticated;
