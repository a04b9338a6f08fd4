-- The audit log is append-only and tamper-evident (docs/security.md, "Audit log").
--
-- Append-only: UPDATE, DELETE and TRUNCATE raise for every role, the owner and superusers included (triggers, not only
-- grants; the grants are taken back too). What remains possible for the owner is to drop or disable the triggers
-- (ALTER TABLE is the owner's right): that is what the hash chain is for.
--
-- Hash chain: every row gets chain_pos (its place in the chain, drawn under a lock held to the end of the inserting
-- transaction, so positions follow commit order), prev_hash (the row_hash of the row before it; 64 zeros for the first)
-- and row_hash = sha256 of its fields, each written as "<length>:<text>;" (unambiguous, reproducible in any language):
--   chain_pos, id, actor, action, entity, entity_id, at (UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ), prev_hash
-- `python -m store.audit verify` recomputes every hash independently of these functions and reports the first row whose
-- hash or link does not match: an edited row breaks its own hash, a deleted or reordered row breaks the next link.
-- The clock (`at`) and the actor label are the database's: a client cannot backdate a row.
-- Existing rows are chained here in id order.


ALTER TABLE public.audit_log ADD COLUMN chain_pos bigint UNIQUE;
ALTER TABLE public.audit_log ADD COLUMN prev_hash text CHECK (prev_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE public.audit_log ADD COLUMN row_hash text CHECK (row_hash ~ '^[0-9a-f]{64}$');
CREATE SEQUENCE public.audit_log_chain_seq AS bigint OWNED BY public.audit_log.chain_pos;

CREATE FUNCTION app.audit_field(p_value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT char_length(coalesce(p_value, '')) || ':' || coalesce(p_value, '') || ';' $$;

CREATE FUNCTION app.audit_row_hash(p_chain_pos bigint, p_id bigint, p_actor text, p_action text, p_entity text,
                                   p_entity_id text, p_at timestamptz, p_prev_hash text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        app.audit_field(p_chain_pos::text) || app.audit_field(p_id::text) || app.audit_field(p_actor)
        || app.audit_field(p_action) || app.audit_field(p_entity) || app.audit_field(p_entity_id)
        || app.audit_field(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || app.audit_field(p_prev_hash), 'UTF8')), 'hex')
$$;

-- chain the rows already there
DO $$
DECLARE
    r record;
    previous text := repeat('0', 64);
    position bigint;
BEGIN
    FOR r IN SELECT * FROM public.audit_log ORDER BY id LOOP
        position := nextval('public.audit_log_chain_seq');
        UPDATE public.audit_log SET chain_pos = position, prev_hash = previous,
            row_hash = app.audit_row_hash(position, r.id, r.actor, r.action, r.entity, r.entity_id, r.at, previous)
        WHERE id = r.id
        RETURNING row_hash INTO previous;
    END LOOP;
END
$$;
ALTER TABLE public.audit_log ALTER COLUMN chain_pos SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL;

CREATE FUNCTION app.chain_audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    previous text;
BEGIN
    -- one writer of the chain at a time, until commit: the next writer then sees this row as the last one
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_log:chain', 0));
    SELECT a.row_hash INTO previous FROM public.audit_log a ORDER BY a.chain_pos DESC LIMIT 1;
    NEW.at := now();
    NEW.chain_pos := nextval('public.audit_log_chain_seq');
    NEW.prev_hash := coalesce(previous, repeat('0', 64));
    NEW.row_hash := app.audit_row_hash(NEW.chain_pos, NEW.id, NEW.actor, NEW.action, NEW.entity, NEW.entity_id,
                                       NEW.at, NEW.prev_hash);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION app.chain_audit_row() FROM PUBLIC;

CREATE FUNCTION app.refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'permission_denied: the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON public.audit_log
    FOR EACH ROW EXECUTE FUNCTION app.chain_audit_row();
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON public.audit_log
    FOR EACH ROW EXECUTE FUNCTION app.refuse_audit_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION app.refuse_audit_change();

REVOKE UPDATE, DELETE, TRUNCATE ON public.audit_log FROM service_role, authenticated, anon;
GRANT SELECT (chain_pos, prev_hash, row_hash) ON public.audit_log TO authenticated;

-- FORCE ROW LEVEL SECURITY: the owner is bound by the policies too (superusers never are). The owner may read and append
-- (the SECURITY DEFINER functions and migrations run as the owner), nothing else.
DO $$
BEGIN
    EXECUTE format('CREATE POLICY audit_owner_select ON public.audit_log FOR SELECT TO %I USING (true)', current_user);
    EXECUTE format('CREATE POLICY audit_owner_insert ON public.audit_log FOR INSERT TO %I WITH CHECK (true)', current_user);
END
$$;
ALTER TABLE public.audit_log FORCE ROW LEVEL SECURITY;
