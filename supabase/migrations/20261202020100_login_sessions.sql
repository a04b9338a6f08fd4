-- Server-side login sessions: the browser's signed cookie carries only a random session token; whether it still signs
-- anybody in is decided here on every script run, so logout and revocation hold across app restarts and across several
-- app processes behind one load balancer. Only the token's sha256 is stored. Deactivated accounts sign in nowhere.
-- Only service_role (the app's login code) may touch any of this.

ALTER TABLE public.clinicians ADD COLUMN active boolean NOT NULL DEFAULT true;
GRANT SELECT (active) ON public.clinicians TO authenticated;

CREATE TABLE public.login_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    clinician_id uuid NOT NULL REFERENCES public.clinicians (id) ON DELETE CASCADE,
    client_address text NOT NULL DEFAULT '' CHECK (char_length(client_address) <= 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz  -- logout, revocation, password change or deactivation
);
CREATE INDEX login_sessions_open_idx ON public.login_sessions (clinician_id) WHERE ended_at IS NULL;
ALTER TABLE public.login_sessions ENABLE ROW LEVEL SECURITY;  -- no policies: nobody but service_role
REVOKE ALL ON public.login_sessions FROM anon, authenticated;
GRANT ALL ON public.login_sessions TO service_role;

CREATE FUNCTION public.login_session_open(p_clinician uuid, p_token_hash text, p_address text) RETURNS uuid
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO login_sessions (clinician_id, token_hash, client_address)
    SELECT id, p_token_hash, left(coalesce(p_address, ''), 100) FROM clinicians WHERE id = p_clinician AND active
    RETURNING id;
$$;

-- The account a token signs in, touching its idle clock; no row when the token is unknown, ended, idle for longer than
-- p_idle_s, older than p_lifetime_s, or its account is deactivated.
CREATE FUNCTION public.login_session_resume(p_token_hash text, p_idle_s double precision, p_lifetime_s double precision)
RETURNS SETOF public.clinicians
LANGUAGE sql SET search_path = public, pg_temp AS $$
    UPDATE login_sessions s SET last_seen_at = now()
    FROM clinicians c
    WHERE s.token_hash = p_token_hash AND s.ended_at IS NULL AND c.id = s.clinician_id AND c.active
      AND s.last_seen_at > now() - make_interval(secs => p_idle_s)
      AND s.created_at > now() - make_interval(secs => p_lifetime_s)
    RETURNING c.*;
$$;

CREATE FUNCTION public.login_session_end(p_token_hash text) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    UPDATE login_sessions SET ended_at = now() WHERE token_hash = p_token_hash AND ended_at IS NULL;
$$;

-- Ends every open session of one account except, optionally, the one making the change (a password change keeps the
-- clinician who made it signed in). Returns how many were ended.
CREATE FUNCTION public.login_sessions_revoke(p_clinician uuid, p_keep_token_hash text) RETURNS integer
LANGUAGE sql SET search_path = public, pg_temp AS $$
    WITH ended AS (
        UPDATE login_sessions SET ended_at = now()
        WHERE clinician_id = p_clinician AND ended_at IS NULL AND token_hash IS DISTINCT FROM p_keep_token_hash
        RETURNING 1)
    SELECT count(*)::integer FROM ended;
$$;

REVOKE ALL ON FUNCTION public.login_session_open(uuid, text, text), public.login_session_resume(text, double precision,
    double precision), public.login_session_end(text), public.login_sessions_revoke(uuid, text)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.login_session_open(uuid, text, text), public.login_session_resume(text,
    double precision, double precision), public.login_session_end(text), public.login_sessions_revoke(uuid, text)
    TO service_role;
