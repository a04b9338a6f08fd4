-- Consent with versions, and withdrawal that takes effect at once (issue 16; docs/privacy.md).
--
-- * consent_texts: the wording patients agree to, one row per published version (the newest is current). Version 1 is
--   seeded here; admins publish new wording through public.publish_consent_text().
-- * consent_records: the consent history of each patient. Every change of a patient's consent columns (record_consent in
--   either backend, or any other write path) appends a row here by trigger, with the version and the very text that was
--   current when it was given or withdrawn.
-- * A session can only start while the patient's latest consent was given to the current text: publishing new wording
--   asks every patient for new consent (trigger on sessions; raises insufficient_privilege,
--   which both store backends report as PermissionDenied).
-- * Withdrawal (consent_facial_analysis becoming false) ends the patient's live and scheduled sessions in the same
--   transaction, so the Pi agent (live_session_for_device) and the patient's browser (session_for_token) see the session
--   end on their next poll, exactly as when a clinician ends it; each ended session is audited ('end_consent_withdrawn').
-- Triggers rather than store code: they hold for every write path (direct SQL, PostgREST table updates, both backends).


CREATE TABLE public.consent_texts (
    version integer PRIMARY KEY CHECK (version >= 1),
    text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 20000),
    published_by uuid REFERENCES public.clinicians (id),
    published_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.consent_texts (version, text) VALUES (1,
    'I agree that during my therapy sessions a camera (in the room or my own, for remote sessions) is used to analyse my '
    'facial expressions. Only emotion probabilities with their timestamps, the position of my face in the picture and '
    'quality figures are stored; no video and no pictures of my face are kept. My clinician uses them alongside the '
    'therapy; they are not a diagnosis. I may withdraw this consent at any time: a running session then stops taking '
    'readings at once and no new session starts. I may ask for a copy of everything held about me, and for its erasure.');

CREATE TABLE public.consent_records (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id uuid NOT NULL REFERENCES public.patients (id) ON DELETE CASCADE,
    given boolean NOT NULL,
    consent_date date,  -- the date of the consent or of its withdrawal, as recorded by the clinician
    scope text NOT NULL DEFAULT '' CHECK (char_length(scope) <= 500),
    text_version integer NOT NULL REFERENCES public.consent_texts (version),
    consent_text text NOT NULL,  -- a copy of the wording: what the patient agreed to stays readable with the consent
    recorded_by uuid REFERENCES public.clinicians (id),  -- NULL when the service role recorded it (Supabase REST path)
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX consent_records_patient_idx ON public.consent_records (patient_id, recorded_at);

-- Patients who consented before this migration agreed to the wording of the time: recorded as version 1.
INSERT INTO public.consent_records (patient_id, given, consent_date, scope, text_version, consent_text, recorded_at)
SELECT p.id, true, p.consent_date, p.consent_scope, 1, t.text, p.created_at
FROM public.patients p CROSS JOIN public.consent_texts t
WHERE p.consent_facial_analysis AND t.version = 1;

REVOKE ALL ON public.consent_texts, public.consent_records FROM anon, authenticated;
GRANT ALL ON public.consent_texts, public.consent_records TO service_role;
GRANT SELECT ON public.consent_texts, public.consent_records TO authenticated;  -- written only by the functions below

ALTER TABLE public.consent_texts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.consent_records ENABLE ROW LEVEL SECURITY;
-- the wording is not secret: every clinician reads it
CREATE POLICY consent_texts_select ON public.consent_texts FOR SELECT TO authenticated
    USING (app.clinician_id() IS NOT NULL);
-- the history goes with the patient (the subquery is filtered by patients_select)
CREATE POLICY consent_records_select ON public.consent_records FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.patients p WHERE p.id = patient_id));


CREATE FUNCTION app.current_consent_version() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT max(version) FROM public.consent_texts
$$;

-- Whether the patient may be analysed now: consent given, and given to the current wording. SECURITY INVOKER: a caller
-- learns nothing about a patient it cannot see (false); the session trigger below calls it as the definer.
CREATE FUNCTION app.consent_is_current(p_patient uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = public, pg_temp AS $$
    SELECT coalesce((
        SELECT p.consent_facial_analysis AND latest.given AND latest.text_version = app.current_consent_version()
        FROM public.patients p
        CROSS JOIN LATERAL (SELECT c.given, c.text_version FROM public.consent_records c WHERE c.patient_id = p.id
                            ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1) latest
        WHERE p.id = p_patient), false)
$$;

-- Every change of the consent columns appends to the history; a withdrawal ends the patient's sessions at once.
CREATE FUNCTION app.record_consent_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    current_version integer := app.current_consent_version();
    ended record;
BEGIN
    INSERT INTO public.consent_records (patient_id, given, consent_date, scope, text_version, consent_text, recorded_by)
    SELECT NEW.id, NEW.consent_facial_analysis, NEW.consent_date, NEW.consent_scope, t.version, t.text,
           app.clinician_id()
    FROM public.consent_texts t WHERE t.version = current_version;
    IF NOT NEW.consent_facial_analysis THEN
        FOR ended IN
            UPDATE public.sessions SET status = 'ended', ended_at = coalesce(ended_at, now())
            WHERE patient_id = NEW.id AND status IN ('scheduled', 'live')
            RETURNING id
        LOOP
            INSERT INTO public.audit_log (actor, action, entity, entity_id)
            VALUES (coalesce(app.actor_label(), 'system'), 'end_consent_withdrawn', 'session', ended.id::text);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION app.record_consent_change() FROM PUBLIC;

CREATE TRIGGER patients_consent_history AFTER UPDATE OF consent_facial_analysis, consent_date, consent_scope
    ON public.patients FOR EACH ROW EXECUTE FUNCTION app.record_consent_change();

-- No session without consent to the current wording (the sessions_insert policy already requires consent itself; this
-- holds for the service role too, and names the reason).
CREATE FUNCTION app.require_current_consent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT app.consent_is_current(NEW.patient_id) THEN
        IF EXISTS (SELECT 1 FROM public.patients p WHERE p.id = NEW.patient_id AND p.consent_facial_analysis) THEN
            RAISE EXCEPTION 'the consent text changed (now version %) since the patient consented; '
                            'record new consent first', app.current_consent_version()
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RAISE EXCEPTION 'the patient has not consented to facial analysis; record consent first'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION app.require_current_consent() FROM PUBLIC;

CREATE TRIGGER sessions_require_current_consent BEFORE INSERT ON public.sessions
    FOR EACH ROW EXECUTE FUNCTION app.require_current_consent();

-- Admins publish new consent wording; returns the new version. Every patient then needs new consent before a session.
-- p_actor: who published it, for the service role only (the Supabase REST backend acts for its admin with that key).
CREATE FUNCTION public.publish_consent_text(p_text text, p_actor text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    is_service boolean := app.claims() ->> 'role' = 'service_role';
    new_version integer;
BEGIN
    IF NOT (app.is_admin() OR is_service) THEN
        RAISE EXCEPTION 'only admins publish consent texts' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_text IS NULL OR char_length(btrim(p_text)) = 0 OR char_length(p_text) > 20000 THEN
        RAISE EXCEPTION 'invalid_input: the consent text must have 1 to 20000 characters';
    END IF;
    LOCK TABLE public.consent_texts IN EXCLUSIVE MODE;  -- versions are dense and never raced
    IF btrim(p_text) = (SELECT t.text FROM public.consent_texts t ORDER BY t.version DESC LIMIT 1) THEN
        RAISE EXCEPTION 'invalid_input: this is the current consent text already';
    END IF;
    INSERT INTO public.consent_texts (version, text, published_by)
    VALUES (app.current_consent_version() + 1, btrim(p_text), app.clinician_id())
    RETURNING version INTO new_version;
    INSERT INTO public.audit_log (actor, action, entity, entity_id)
    VALUES (CASE WHEN is_service THEN coalesce(p_actor, 'system') ELSE app.actor_label() END,
            'publish', 'consent_text', new_version::text);
    RETURN new_version;
END
$$;

REVOKE ALL ON FUNCTION app.current_consent_version(), app.consent_is_current(uuid),
    public.publish_consent_text(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_consent_version(), app.consent_is_current(uuid) TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.publish_consent_text(text, text) TO authenticated, service_role;
