-- Least privilege for Pi agents (docs/security.md, "Stolen Raspberry Pi").
--
-- Before this migration a Pi's DATABASE_URL was the database owner. Now each device gets its own database login, created
-- when it is registered (`python -m store.devices provision`, or the Devices page):
--   * login role `psya_dev_<device uuid hex>`: LOGIN, no ownership, no CREATEROLE/CREATEDB/BYPASSRLS, a connection
--     limit, and one membership: the group role `psya_device`;
--   * `psya_device` (NOLOGIN) holds no table privilege at all, only EXECUTE on the four functions below. They are
--     SECURITY DEFINER with a fixed search_path, and each one does exactly one device thing for the calling device.
-- Who is calling: for a device login it is `session_user`, which nothing the device runs can change (SET ROLE, RESET
-- ROLE and rewriting request.jwt.claims leave it alone). Only when the session user is NOT a device login (PostgREST's
-- `authenticator` on Supabase, or the app's own owner connection) do the functions trust the JWT claims
-- {"role": "psya_device", "sub": "<device id>"}: PostgREST has verified the JWT's signature before setting them, and the
-- owner connection can do anything anyway.
-- On Supabase, PostgREST switches to `psya_device` for a device JWT, which needs `GRANT psya_device TO authenticator`.
--
-- The device clauses of the `authenticated` policies are removed: a device never acts as `authenticated` again.


DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'psya_device') THEN
        CREATE ROLE psya_device NOLOGIN NOINHERIT;
    END IF;
    -- the migrating user (the app's owner login) acts as a device the way it acts as authenticated: SET ROLE
    EXECUTE format('GRANT psya_device TO %I', current_user);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
        GRANT psya_device TO authenticator;  -- Supabase's PostgREST login: device JWTs carry "role": "psya_device"
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO psya_device;

ALTER TABLE public.devices ADD COLUMN db_role text UNIQUE CHECK (db_role ~ '^psya_dev_[0-9a-f]{32}$');
GRANT SELECT (db_role) ON public.devices TO authenticated;

-- The device behind this call, or NULL. See the header for why session_user decides for device logins.
CREATE FUNCTION app.calling_device() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN session_user::text LIKE 'psya\_dev\_%' THEN
            (SELECT d.id FROM public.devices d WHERE d.db_role = session_user::text)
        WHEN app.claims() ->> 'role' = 'psya_device' AND app.claims() ->> 'sub' ~ '^[0-9a-fA-F-]{36}$' THEN
            (SELECT d.id FROM public.devices d WHERE d.id = (app.claims() ->> 'sub')::uuid)
    END
$$;
REVOKE ALL ON FUNCTION app.calling_device() FROM PUBLIC;

-- A device proves its id and key (the agent does this once at start, so a misconfigured env file fails loudly).
CREATE FUNCTION public.device_authenticate(p_device_id uuid, p_key text)
RETURNS TABLE (id uuid, name text, room text, last_heartbeat timestamptz, created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me uuid := app.calling_device();
BEGIN
    IF me IS NULL OR me IS DISTINCT FROM p_device_id OR p_key IS NULL OR char_length(p_key) NOT BETWEEN 1 AND 200
       OR NOT EXISTS (SELECT 1 FROM public.devices d
                      WHERE d.id = me AND d.key_hash = encode(sha256(convert_to(p_key, 'UTF8')), 'hex')) THEN
        RAISE EXCEPTION 'permission_denied: wrong device id or key';
    END IF;
    RETURN QUERY SELECT d.id, d.name, d.room, d.last_heartbeat, d.created_at FROM public.devices d WHERE d.id = me;
END
$$;

CREATE FUNCTION public.device_heartbeat() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me uuid := app.calling_device();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'permission_denied: not a registered device';
    END IF;
    UPDATE public.devices SET last_heartbeat = now() WHERE id = me;
END
$$;

-- The live session assigned to the calling device (none, or one: sessions_device_live_idx). Only what the agent needs.
CREATE FUNCTION public.device_live_session()
RETURNS TABLE (id uuid, patient_id uuid, clinician_id uuid, mode text, status text, device_id uuid,
               started_at timestamptz, ended_at timestamptz, join_expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me uuid := app.calling_device();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'permission_denied: not a registered device';
    END IF;
    RETURN QUERY SELECT s.id, s.patient_id, s.clinician_id, s.mode, s.status, s.device_id, s.started_at, s.ended_at,
                        s.join_expires_at, s.created_at
                 FROM public.sessions s WHERE s.device_id = me AND s.status = 'live'
                 ORDER BY s.started_at DESC LIMIT 1;
END
$$;

-- Readings from the calling device: only into sessions assigned to it, with source 'pi', under the same live / late
-- readings rule as public.insert_readings (20261125100100_late_readings_fast_path.sql). Sessions not assigned to this
-- device are 'not_found' (a device learns nothing about other sessions). Returns how many readings were new; nothing
-- is ever returned about stored readings.
CREATE FUNCTION public.device_insert_readings(p_readings jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me uuid := app.calling_device();
    sid uuid;
    latest timestamptz;
    current_status text;
    current_end timestamptz;
    all_live boolean := true;
    fresh jsonb;
    refusal text;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'permission_denied: not a registered device';
    END IF;
    IF jsonb_typeof(p_readings) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid_input: readings must be a JSON array';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_readings) r WHERE (r ->> 'source') IS DISTINCT FROM 'pi') THEN
        RAISE EXCEPTION 'invalid_input: readings from a device have source pi';
    END IF;
    FOR sid IN SELECT DISTINCT (r ->> 'session_id')::uuid FROM jsonb_array_elements(p_readings) r ORDER BY 1 LOOP
        SELECT s.status INTO current_status FROM public.sessions s WHERE s.id = sid AND s.device_id = me;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not_found: session %', sid;
        END IF;
        all_live := all_live AND current_status = 'live';
    END LOOP;
    IF all_live THEN
        RETURN app.insert_reading_rows(p_readings);
    END IF;
    fresh := app.unstored_readings(p_readings);
    FOR sid, latest IN
        SELECT (r ->> 'session_id')::uuid, max((r ->> 'captured_at')::timestamptz)
        FROM jsonb_array_elements(fresh) r GROUP BY 1 ORDER BY 1
    LOOP
        SELECT s.status, s.ended_at INTO current_status, current_end FROM public.sessions s WHERE s.id = sid;
        IF current_status = 'ended' THEN
            refusal := app.late_readings_refusal(format('session %s ended', sid), current_end, latest);
            IF refusal IS NOT NULL THEN
                RAISE EXCEPTION 'session_not_live: %', refusal;
            END IF;
        ELSIF current_status <> 'live' THEN
            RAISE EXCEPTION 'session_not_live: session % is %', sid, current_status;
        END IF;
    END LOOP;
    RETURN app.insert_reading_rows(fresh);
END
$$;

REVOKE ALL ON FUNCTION public.device_authenticate(uuid, text), public.device_heartbeat(), public.device_live_session(),
    public.device_insert_readings(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.device_authenticate(uuid, text), public.device_heartbeat(), public.device_live_session(),
    public.device_insert_readings(jsonb) TO psya_device;

-- Creating a device's login when it is registered: by the clinician who registered it (or the service role, for
-- `python -m store.devices provision`), once. The password arrives as a SCRAM-SHA-256 verifier computed by the client,
-- so the device key never reaches the server in plain text (not even in a statement log). The function owner needs
-- CREATEROLE (Supabase's `postgres` and the embedded superuser have it).
CREATE FUNCTION app.create_device_login(p_device_id uuid, p_verifier text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    login text := 'psya_dev_' || replace(p_device_id::text, '-', '');
    creator uuid;
    existing text;
BEGIN
    SELECT d.created_by, d.db_role INTO creator, existing FROM public.devices d WHERE d.id = p_device_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not_found: device %', p_device_id;
    END IF;
    IF NOT (app.claims() ->> 'role' = 'service_role'
            OR (app.clinician_id() IS NOT NULL AND creator = app.clinician_id())) THEN
        RAISE EXCEPTION 'permission_denied: only whoever registered device % creates its login', p_device_id;
    END IF;
    IF existing IS NOT NULL OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) THEN
        RAISE EXCEPTION 'invalid_input: device % already has a database login', p_device_id;
    END IF;
    IF p_verifier IS NULL OR p_verifier !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
        RAISE EXCEPTION 'invalid_input: the device password must be a SCRAM-SHA-256 verifier';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS '
                   'CONNECTION LIMIT 10 PASSWORD %L', login, p_verifier);
    EXECUTE format('GRANT psya_device TO %I', login);
    UPDATE public.devices SET db_role = login WHERE id = p_device_id;
    RETURN login;
END
$$;
REVOKE ALL ON FUNCTION app.create_device_login(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.create_device_login(uuid, text) TO authenticated, service_role;

-- A device's login is removed with `app.drop_device_login` (admins; e.g. when a Pi is lost): the role goes, so its
-- DATABASE_URL stops working at once, and any open connection of it is ended.
CREATE FUNCTION app.drop_device_login(p_device_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    login text;
BEGIN
    IF NOT (app.claims() ->> 'role' = 'service_role' OR app.is_admin()) THEN
        RAISE EXCEPTION 'permission_denied: only admins revoke a device';
    END IF;
    SELECT d.db_role INTO login FROM public.devices d WHERE d.id = p_device_id;
    IF login IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.usename = login;
    UPDATE public.devices SET db_role = NULL WHERE id = p_device_id;
    EXECUTE format('DROP ROLE IF EXISTS %I', login);
END
$$;
REVOKE ALL ON FUNCTION app.drop_device_login(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.drop_device_login(uuid) TO authenticated, service_role;


-- Devices no longer act as `authenticated`: the device branches of the policies go.
DROP POLICY devices_select ON public.devices;
CREATE POLICY devices_select ON public.devices FOR SELECT TO authenticated USING (app.clinician_id() IS NOT NULL);
DROP POLICY devices_heartbeat ON public.devices;
REVOKE UPDATE (last_heartbeat) ON public.devices FROM authenticated;

DROP POLICY sessions_select ON public.sessions;
CREATE POLICY sessions_select ON public.sessions FOR SELECT TO authenticated
    USING (clinician_id = app.clinician_id() OR app.is_admin());

DROP POLICY readings_select ON public.readings;
CREATE POLICY readings_select ON public.readings FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.sessions s WHERE s.id = session_id
                   AND (s.clinician_id = app.clinician_id() OR app.is_admin())));
DROP POLICY readings_insert ON public.readings;
CREATE POLICY readings_insert ON public.readings FOR INSERT TO authenticated
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.sessions s
        WHERE s.id = session_id AND app.session_takes_reading(s.status, s.ended_at, captured_at)
          AND (s.clinician_id = app.clinician_id() OR app.is_admin())));

-- The audit log names a device actor only through the device functions' owner; `authenticated` writes as a clinician.
DROP POLICY audit_insert ON public.audit_log;
CREATE POLICY audit_insert ON public.audit_log FOR INSERT TO authenticated
    WITH CHECK (app.actor_kind() = 'clinician' AND actor = app.actor_label());
