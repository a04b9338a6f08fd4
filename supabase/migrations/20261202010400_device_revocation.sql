-- Revoking a device (a lost or stolen Pi), for both ways a device reaches the database:
--   * its own login (direct connection) is dropped and its open connections ended, so its DATABASE_URL stops working;
--   * devices.revoked_at is set, and app.calling_device() no longer recognises it, so a device JWT (Supabase REST) that
--     is still within its lifetime is refused by every device function too.
-- public.revoke_device replaces app.drop_device_login (20261202010000_device_role.sql) and is callable over PostgREST.
-- Admins only (and the service role). A revoked device stays in the table: its sessions and readings keep their history.


ALTER TABLE public.devices ADD COLUMN revoked_at timestamptz;
GRANT SELECT (revoked_at) ON public.devices TO authenticated;

CREATE OR REPLACE FUNCTION app.calling_device() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN session_user::text LIKE 'psya\_dev\_%' THEN
            (SELECT d.id FROM public.devices d WHERE d.db_role = session_user::text AND d.revoked_at IS NULL)
        WHEN app.claims() ->> 'role' = 'psya_device' AND app.claims() ->> 'sub' ~ '^[0-9a-fA-F-]{36}$' THEN
            (SELECT d.id FROM public.devices d WHERE d.id = (app.claims() ->> 'sub')::uuid AND d.revoked_at IS NULL)
    END
$$;

CREATE FUNCTION public.revoke_device(p_device_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    login text;
BEGIN
    IF NOT (app.claims() ->> 'role' = 'service_role' OR app.is_admin()) THEN
        RAISE EXCEPTION 'permission_denied: only admins revoke a device';
    END IF;
    UPDATE public.devices SET revoked_at = coalesce(revoked_at, now()) WHERE id = p_device_id RETURNING db_role INTO login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not_found: device %', p_device_id;
    END IF;
    IF login IS NOT NULL THEN
        PERFORM pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.usename = login;
        EXECUTE format('DROP ROLE IF EXISTS %I', login);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.revoke_device(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.revoke_device(uuid) TO authenticated, service_role;

DROP FUNCTION app.drop_device_login(uuid);
