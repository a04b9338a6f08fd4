-- Typed event markers (issue 15). A clinician keeps a small list of marker types (label + optional one-key shortcut);
-- during a live session or in the review they mark events of a session with a type and an optional free text.
-- Least privilege: a marker type belongs to one clinician, a marker to one session, and only that session's clinician
-- sees or changes its markers (admins included in nothing here: markers are clinical notes, not administration).

CREATE TABLE public.marker_types (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    clinician_id uuid NOT NULL REFERENCES public.clinicians (id) ON DELETE CASCADE,
    label text NOT NULL CHECK (char_length(label) BETWEEN 1 AND 80),
    shortcut text NOT NULL DEFAULT '' CHECK (shortcut ~ '^[1-9]?$'),  -- one digit key, or none
    position smallint NOT NULL DEFAULT 0 CHECK (position BETWEEN 0 AND 999),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT marker_type_label_unique UNIQUE (clinician_id, label)
);
CREATE UNIQUE INDEX marker_types_shortcut_idx ON public.marker_types (clinician_id, shortcut) WHERE shortcut <> '';

CREATE TABLE public.session_markers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL REFERENCES public.sessions (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    kind text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 80),  -- the type's label, copied: renaming a type later
    text text NOT NULL DEFAULT '' CHECK (char_length(text) <= 2000),  -- does not rewrite what was marked
    author_id uuid NOT NULL REFERENCES public.clinicians (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_markers_session_idx ON public.session_markers (session_id, at);

REVOKE ALL ON public.marker_types, public.session_markers FROM anon, authenticated;
GRANT ALL ON public.marker_types, public.session_markers TO service_role;
GRANT SELECT, INSERT, DELETE ON public.marker_types TO authenticated;
GRANT UPDATE (label, shortcut, position) ON public.marker_types TO authenticated;
GRANT SELECT, INSERT, DELETE ON public.session_markers TO authenticated;
GRANT UPDATE (at, kind, text, updated_at) ON public.session_markers TO authenticated;

ALTER TABLE public.marker_types ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_markers ENABLE ROW LEVEL SECURITY;

-- marker types: the owning clinician only.
CREATE POLICY marker_types_select ON public.marker_types FOR SELECT TO authenticated
    USING (clinician_id = app.clinician_id());
CREATE POLICY marker_types_insert ON public.marker_types FOR INSERT TO authenticated
    WITH CHECK (clinician_id = app.clinician_id());
CREATE POLICY marker_types_update ON public.marker_types FOR UPDATE TO authenticated
    USING (clinician_id = app.clinician_id()) WITH CHECK (clinician_id = app.clinician_id());
CREATE POLICY marker_types_delete ON public.marker_types FOR DELETE TO authenticated
    USING (clinician_id = app.clinician_id());

-- markers: only the clinician of the marker's session (not admins, not devices, not the remote patient).
CREATE POLICY session_markers_select ON public.session_markers FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id AND s.clinician_id = app.clinician_id()));
CREATE POLICY session_markers_insert ON public.session_markers FOR INSERT TO authenticated
    WITH CHECK (author_id = app.clinician_id()
                AND EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id AND s.clinician_id = app.clinician_id()));
CREATE POLICY session_markers_update ON public.session_markers FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id AND s.clinician_id = app.clinician_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id AND s.clinician_id = app.clinician_id()));
CREATE POLICY session_markers_delete ON public.session_markers FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id AND s.clinician_id = app.clinician_id()));
