-- Session rules that lived only in Python move into the database (docs/security.md, "Curious clinician").
--
-- For the API roles (authenticated, service_role, anon, psya_device), whatever the client:
--   * a new session gets created_at = now(); it is scheduled or live, not ended; a live one starts now (started_at within
--     app.reading_clock_skew() of the database clock: the REST backend stamps it with the app server's clock);
--   * a join link lives at most app.join_link_max_lifetime() (7 days) from the session's creation, and starts in the
--     future; also a CHECK constraint, so even the owner cannot store a longer one;
--   * status only moves forward: scheduled -> live -> ended (or scheduled -> ended); an ended session cannot be reopened;
--   * started_at, once set, never changes; ended_at is set once, when the session ends, to a time between its start and
--     now (+ skew); after that nothing of an ended session changes (times, patient, clinician, device, mode, link);
--   * created_at never changes.
-- Errors are 'invalid_input:' (store.InvalidInput). The table owner (maintenance, tests that simulate time passing) is not
-- bound by the trigger; the owner is the "insider with database access" of docs/security.md, whose edits the hash-chained
-- audit log cannot prevent but can expose (20261202010300_audit_chain.sql).


CREATE FUNCTION app.join_link_max_lifetime() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '7 days' $$;
REVOKE ALL ON FUNCTION app.join_link_max_lifetime() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.join_link_max_lifetime() TO anon, authenticated, service_role;

ALTER TABLE public.sessions ADD CONSTRAINT join_link_lifetime_capped
    CHECK (join_expires_at IS NULL OR join_expires_at <= created_at + interval '7 days') NOT VALID;

CREATE FUNCTION app.guard_session_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    skew interval := app.reading_clock_skew();
BEGIN
    IF current_user::text NOT IN ('authenticated', 'service_role', 'anon', 'psya_device') THEN
        RETURN NEW;  -- the owner: see the header
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
        IF NEW.status = 'ended' OR NEW.ended_at IS NOT NULL THEN
            RAISE EXCEPTION 'invalid_input: a session cannot be created ended';
        END IF;
        IF NEW.status = 'live' AND (NEW.started_at IS NULL OR NEW.started_at NOT BETWEEN now() - skew AND now() + skew) THEN
            RAISE EXCEPTION 'invalid_input: a live session starts now (database time %), not at %', now(), NEW.started_at;
        END IF;
        IF NEW.status = 'scheduled' AND NEW.started_at IS NOT NULL THEN
            RAISE EXCEPTION 'invalid_input: a scheduled session has not started';
        END IF;
        IF NEW.join_expires_at IS NOT NULL
           AND (NEW.join_expires_at <= now() OR NEW.join_expires_at > now() + app.join_link_max_lifetime()) THEN
            RAISE EXCEPTION 'invalid_input: a join link expires after now and within % (asked: %)',
                app.join_link_max_lifetime(), NEW.join_expires_at;
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'invalid_input: created_at of session % cannot change', OLD.id;
    END IF;
    IF OLD.status = 'ended' THEN
        IF ROW(NEW.status, NEW.started_at, NEW.ended_at, NEW.patient_id, NEW.clinician_id, NEW.device_id, NEW.mode,
               NEW.join_token_hash, NEW.join_expires_at)
           IS DISTINCT FROM
           ROW(OLD.status, OLD.started_at, OLD.ended_at, OLD.patient_id, OLD.clinician_id, OLD.device_id, OLD.mode,
               OLD.join_token_hash, OLD.join_expires_at) THEN
            RAISE EXCEPTION 'invalid_input: session % has ended; an ended session cannot be reopened or changed', OLD.id;
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status = 'live' AND NEW.status = 'scheduled' THEN
        RAISE EXCEPTION 'invalid_input: a live session cannot go back to scheduled';
    END IF;
    IF OLD.started_at IS NOT NULL AND NEW.started_at IS DISTINCT FROM OLD.started_at THEN
        RAISE EXCEPTION 'invalid_input: the start of session % cannot be rewritten', OLD.id;
    END IF;
    IF OLD.started_at IS NULL AND NEW.started_at IS NOT NULL
       AND NEW.started_at NOT BETWEEN now() - skew AND now() + skew THEN
        RAISE EXCEPTION 'invalid_input: a session starts now (database time %), not at %', now(), NEW.started_at;
    END IF;
    IF NEW.status = 'ended' THEN
        NEW.ended_at := coalesce(NEW.ended_at, now());
        IF NEW.ended_at > now() + skew OR NEW.ended_at < coalesce(NEW.started_at, OLD.created_at) THEN
            RAISE EXCEPTION 'invalid_input: session % ends between its start and now (database time %), not at %',
                OLD.id, now(), NEW.ended_at;
        END IF;
    ELSIF NEW.ended_at IS NOT NULL THEN
        RAISE EXCEPTION 'invalid_input: only an ended session has an end time';
    END IF;
    IF NEW.join_expires_at IS DISTINCT FROM OLD.join_expires_at
       AND (NEW.join_expires_at IS NULL OR NEW.join_expires_at > OLD.created_at + app.join_link_max_lifetime()) THEN
        RAISE EXCEPTION 'invalid_input: a join link lives at most % from the session''s creation',
            app.join_link_max_lifetime();
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION app.guard_session_rules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.guard_session_rules() TO anon, authenticated, service_role;

CREATE TRIGGER sessions_guard_rules BEFORE INSERT OR UPDATE ON public.sessions
    FOR EACH ROW EXECUTE FUNCTION app.guard_session_rules();
