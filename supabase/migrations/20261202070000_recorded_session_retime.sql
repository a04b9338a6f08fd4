-- Recorded videos keep their own clock (issue 12): store.retime_recorded_session dates a recorded_video session by the
-- recording (its start while the readings are stored, then its end = start + the video's length). The session rules of
-- 20261202010200_session_rules.sql forbid rewriting started_at and changing an ended session; this replaces the guard
-- with the same rules plus two narrow exceptions for recorded_video sessions only (see the comment in the function).
-- Readings stay bounded by 20261202010100_reading_time_bounds.sql (a recorded video's within 24 h after its start).

CREATE OR REPLACE FUNCTION app.guard_session_rules() RETURNS trigger
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
    -- Recorded videos keep their own clock (issue 12, store.retime_recorded_session): a recorded_video session is dated
    -- when the recording began, not when it was uploaded. While live, its start may move to any time up to now; once
    -- ended, its end may move back to between its start and the time it really ended (the video's length). Nothing else
    -- changes in the same update.
    IF OLD.mode = 'recorded_video' AND ROW(NEW.status, NEW.patient_id, NEW.clinician_id, NEW.device_id, NEW.mode,
           NEW.join_token_hash, NEW.join_expires_at)
       IS NOT DISTINCT FROM ROW(OLD.status, OLD.patient_id, OLD.clinician_id, OLD.device_id, OLD.mode,
           OLD.join_token_hash, OLD.join_expires_at) THEN
        IF OLD.status = 'live' AND NEW.started_at IS DISTINCT FROM OLD.started_at AND NEW.ended_at IS NULL THEN
            IF NEW.started_at IS NULL OR NEW.started_at > now() + skew THEN
                RAISE EXCEPTION 'invalid_input: a recording starts before now (database time %), not at %', now(),
                    NEW.started_at;
            END IF;
            RETURN NEW;
        END IF;
        IF OLD.status = 'ended' AND NEW.started_at IS NOT DISTINCT FROM OLD.started_at
           AND NEW.ended_at IS DISTINCT FROM OLD.ended_at THEN
            IF NEW.ended_at IS NULL OR NEW.ended_at < OLD.started_at OR NEW.ended_at > OLD.ended_at THEN
                RAISE EXCEPTION 'invalid_input: a recording ends between its start and when its session ended, not at %',
                    NEW.ended_at;
            END IF;
            RETURN NEW;
        END IF;
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
