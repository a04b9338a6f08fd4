-- Login throttling decided atomically in the database: growing delays per account and per client address instead of a
-- hard lock-out (a stranger who types wrong passwords for a clinician's name slows that name down, but cannot lock the
-- clinician out for long, and each refused attempt costs the attacker nothing it could use).
--
-- Every attempt first calls public.login_attempt_begin, which counts it as a failure in advance, under a row lock, and
-- answers how long the caller must wait (0: check the password now). A correct password then calls
-- public.login_throttle_reset, which forgets the count. Because the count is taken before the password is checked, 40
-- parallel attempts cannot all slip through between "check" and "record": the first free_failures + 1 are checked, the
-- rest are told to wait.
--
-- Keys are sha256 hex of 'account:<username>' and 'address:<client address>', so the table holds no typed names (a
-- password typed into the username field stays unreadable) and unknown usernames are throttled exactly like real ones.
-- Only service_role (the app's login code) may touch any of this.

CREATE TABLE public.login_throttle (
    key_hash text PRIMARY KEY CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_attempt_at timestamptz,
    blocked_until timestamptz
);
ALTER TABLE public.login_throttle ENABLE ROW LEVEL SECURITY;  -- no policies: nobody but service_role
REVOKE ALL ON public.login_throttle FROM anon, authenticated;
GRANT ALL ON public.login_throttle TO service_role;

CREATE FUNCTION app.login_throttle_key(p_kind text, p_value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT encode(sha256(convert_to(p_kind || ':' || p_value, 'UTF8')), 'hex') $$;

CREATE FUNCTION public.login_attempt_begin(
    p_username text, p_address text, p_free_failures integer, p_first_delay_s double precision,
    p_account_max_delay_s double precision, p_address_max_delay_s double precision, p_memory_s double precision
) RETURNS double precision
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    keys text[] := ARRAY[app.login_throttle_key('account', p_username)];
    caps double precision[] := ARRAY[p_account_max_delay_s];
    wait_s double precision := 0;
    blocked timestamptz;
    counted integer;
    until timestamptz;
BEGIN
    IF coalesce(p_address, '') <> '' THEN
        keys := keys || app.login_throttle_key('address', p_address);
        caps := caps || p_address_max_delay_s;
    END IF;
    -- Lock every key's row in a fixed order (account, then address): concurrent attempts on one account queue here,
    -- and two attempts never hold each other's rows crosswise (no deadlock).
    FOR i IN 1 .. array_length(keys, 1) LOOP
        INSERT INTO login_throttle (key_hash) VALUES (keys[i]) ON CONFLICT (key_hash) DO NOTHING;
        SELECT blocked_until INTO blocked FROM login_throttle WHERE key_hash = keys[i] FOR UPDATE;
        IF blocked > now() THEN
            wait_s := greatest(wait_s, extract(epoch FROM blocked - now())::double precision);
        END IF;
    END LOOP;
    IF wait_s > 0 THEN
        RETURN wait_s;  -- refused without counting: waiting out the delay is the only way on
    END IF;
    FOR i IN 1 .. array_length(keys, 1) LOOP
        UPDATE login_throttle SET
            -- a key quiet for longer than the memory starts a fresh count
            failures = CASE WHEN last_attempt_at IS NULL OR last_attempt_at < now() - make_interval(secs => p_memory_s)
                            THEN 1 ELSE failures + 1 END,
            last_attempt_at = now()
        WHERE key_hash = keys[i] RETURNING failures INTO counted;
        -- the first free_failures attempts are free; then first_delay, doubling with each failure, up to the key's cap
        until := CASE WHEN counted > p_free_failures THEN now() + make_interval(secs => least(
            p_first_delay_s * power(2, least(counted - p_free_failures - 1, 60)), caps[i])) END;
        UPDATE login_throttle SET blocked_until = until WHERE key_hash = keys[i];
        IF i = 1 THEN  -- shown to admins on the Clinicians page
            UPDATE clinicians SET failed_logins = counted, locked_until = until WHERE username = p_username;
        END IF;
    END LOOP;
    RETURN 0;
END
$$;

-- After a correct password (and an admin's "unlock", with p_address NULL): forget the counts.
CREATE FUNCTION public.login_throttle_reset(p_username text, p_address text) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    DELETE FROM login_throttle WHERE key_hash IN (
        app.login_throttle_key('account', p_username),
        CASE WHEN coalesce(p_address, '') <> '' THEN app.login_throttle_key('address', p_address) END);
    UPDATE clinicians SET failed_logins = 0, locked_until = NULL WHERE username = p_username;
$$;

REVOKE ALL ON FUNCTION public.login_attempt_begin(text, text, integer, double precision, double precision,
    double precision, double precision), public.login_throttle_reset(text, text) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.login_attempt_begin(text, text, integer, double precision, double precision,
    double precision, double precision), public.login_throttle_reset(text, text) TO service_role;
