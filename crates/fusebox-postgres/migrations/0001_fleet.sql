-- fusebox fleet store, version 1: breakers, instance leases, the functions that change
-- them (each called as one statement, holding the breaker's row lock only for that
-- statement), and two views for dashboards.
--
-- __SCHEMA__ is the configured schema; __CHANNEL__ the LISTEN/NOTIFY channel.
-- Times are milliseconds since the Unix epoch on the database's clock.

-- One row per breaker: the fleet's shared record.
CREATE TABLE __SCHEMA__.breakers (
    name            text PRIMARY KEY CHECK (name <> ''),
    state           text NOT NULL DEFAULT 'closed'
                    CHECK (state IN ('closed', 'open', 'half_open')),
    generation      bigint NOT NULL DEFAULT 0,
    open_until_ms   bigint NOT NULL DEFAULT 0,
    trips           bigint NOT NULL DEFAULT 0,
    trial_successes bigint NOT NULL DEFAULT 0,
    trial_failures  bigint NOT NULL DEFAULT 0,
    forced          text CHECK (forced IN ('open', 'closed')),
    forced_until_ms bigint,
    transitions     bigint NOT NULL DEFAULT 0,
    opens           bigint NOT NULL DEFAULT 0,
    changed_ms      bigint NOT NULL DEFAULT 0,
    mode            text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per instance of a breaker: its lease, its verdict and its outcome counters.
-- Renewed every sync interval: no index beyond the key, so renewals stay HOT updates.
CREATE TABLE __SCHEMA__.instances (
    breaker            text NOT NULL REFERENCES __SCHEMA__.breakers (name) ON DELETE CASCADE,
    id                 text NOT NULL CHECK (id <> ''),
    lease_until_ms     bigint NOT NULL DEFAULT 0,
    seq                bigint NOT NULL DEFAULT 0,
    successes          bigint NOT NULL DEFAULT 0,
    failures           bigint NOT NULL DEFAULT 0,
    slow               bigint NOT NULL DEFAULT 0,
    local_open         boolean NOT NULL DEFAULT false,
    claimed            bigint NOT NULL DEFAULT 0,
    claimed_generation bigint NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (breaker, id)
) WITH (fillfactor = 70);

-- The database's clock in milliseconds.
CREATE FUNCTION __SCHEMA__.now_ms() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

-- a + b for non-negative operands, saturating instead of overflowing.
CREATE FUNCTION __SCHEMA__.plus_ms(a bigint, b bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN b >= 9223372036854775807 - a THEN 9223372036854775807 ELSE a + b END
$$;

-- What every store function answers: one row per known instance (or one row with a null
-- instance), each carrying the record, the database's time and the call's own result
-- (won: 0 or 1, or slots granted).
CREATE TYPE __SCHEMA__.fleet_row AS (
    outcome         bigint,
    now_ms          bigint,
    generation      bigint,
    state           text,
    open_until_ms   bigint,
    trips           bigint,
    trial_successes bigint,
    trial_failures  bigint,
    forced          text,
    forced_until_ms bigint,
    transitions     bigint,
    opens           bigint,
    changed_ms      bigint,
    mode            text,
    reason          text,
    instance        text,
    lease_until_ms  bigint,
    seq             bigint,
    successes       bigint,
    failures        bigint,
    slow            bigint,
    local_open      boolean,
    claims          bigint
);

-- Instances whose lease ended more than this long ago are forgotten.
CREATE FUNCTION __SCHEMA__.forget_after_ms() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 600000::bigint $$;

-- One breaker's view at p_now; no row when the breaker is unknown. A forced state past
-- its end reads as none; trial slots count only for live instances of the current
-- half-open episode.
CREATE FUNCTION __SCHEMA__.fleet_rows(p_name text, p_now bigint, p_outcome bigint)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE sql STABLE AS $$
    SELECT p_outcome, p_now, b.generation, b.state, b.open_until_ms, b.trips,
           b.trial_successes, b.trial_failures,
           CASE WHEN b.forced_until_ms <= p_now THEN NULL ELSE b.forced END,
           CASE WHEN b.forced_until_ms <= p_now THEN NULL ELSE b.forced_until_ms END,
           b.transitions, b.opens, b.changed_ms, b.mode, b.reason,
           i.id, i.lease_until_ms, i.seq, i.successes, i.failures, i.slow, i.local_open,
           CASE WHEN i.lease_until_ms > p_now AND i.claimed_generation = b.generation
                     AND b.state = 'half_open'
                THEN i.claimed ELSE 0 END
    FROM __SCHEMA__.breakers b
    LEFT JOIN __SCHEMA__.instances i
           ON i.breaker = b.name
          AND __SCHEMA__.plus_ms(i.lease_until_ms, __SCHEMA__.forget_after_ms()) > p_now
    WHERE b.name = p_name
    ORDER BY i.id COLLATE "C"
$$;

-- Locks a breaker's row for the rest of the statement (FOR NO KEY UPDATE: its key never
-- changes), creating it if needed, and clears a forced state past its end.
CREATE FUNCTION __SCHEMA__.lock_breaker(p_name text, p_now bigint)
RETURNS __SCHEMA__.breakers
LANGUAGE plpgsql AS $$
DECLARE
    r __SCHEMA__.breakers;
BEGIN
    SELECT * INTO r FROM __SCHEMA__.breakers WHERE name = p_name FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        INSERT INTO __SCHEMA__.breakers (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
        SELECT * INTO r FROM __SCHEMA__.breakers WHERE name = p_name FOR NO KEY UPDATE;
    END IF;
    IF r.forced_until_ms <= p_now THEN
        UPDATE __SCHEMA__.breakers
           SET forced = NULL, forced_until_ms = NULL, updated_at = clock_timestamp()
         WHERE name = p_name
        RETURNING * INTO r;
    END IF;
    RETURN r;
END
$$;

-- A fleet transition on a locked row: bumps the generation, resets the trial counters,
-- and announces the new generation to listeners (delivered when the statement commits).
CREATE FUNCTION __SCHEMA__.apply_change(
    p_name text, p_target text, p_cooldown_ms bigint, p_reason text, p_now bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
BEGIN
    UPDATE __SCHEMA__.breakers
       SET generation = generation + 1,
           state = p_target,
           transitions = transitions + 1,
           changed_ms = p_now,
           reason = p_reason,
           trial_successes = 0,
           trial_failures = 0,
           open_until_ms = CASE p_target
                               WHEN 'open' THEN __SCHEMA__.plus_ms(p_now, p_cooldown_ms)
                               WHEN 'closed' THEN 0
                               ELSE open_until_ms END,
           trips = CASE p_target
                       WHEN 'open' THEN least(trips + 1, 4294967295)
                       WHEN 'closed' THEN 0
                       ELSE trips END,
           opens = opens + CASE WHEN p_target = 'open' THEN 1 ELSE 0 END,
           updated_at = clock_timestamp()
     WHERE name = p_name
    RETURNING generation INTO g;
    PERFORM pg_notify('__CHANNEL__', g::text || ':' || p_name);
    RETURN g;
END
$$;

-- One instance's flush: renews its lease and verdict, adds its deltas when p_seq is newer
-- than the last applied, counts its trials only for the current half-open episode, and
-- gives back released trial slots.
CREATE FUNCTION __SCHEMA__.sync(
    p_breaker text, p_instance text, p_lease_ttl_ms bigint, p_seq bigint,
    p_successes bigint, p_failures bigint, p_slow bigint,
    p_trial_generation bigint, p_trial_successes bigint, p_trial_failures bigint,
    p_release bigint, p_local_open boolean, p_mode text)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := __SCHEMA__.now_ms();
    b __SCHEMA__.breakers;
    i __SCHEMA__.instances;
    v_ts bigint := 0;
    v_tf bigint := 0;
BEGIN
    b := __SCHEMA__.lock_breaker(p_breaker, v_now);
    SELECT * INTO i FROM __SCHEMA__.instances WHERE breaker = p_breaker AND id = p_instance;
    IF NOT FOUND THEN
        INSERT INTO __SCHEMA__.instances (breaker, id) VALUES (p_breaker, p_instance)
        RETURNING * INTO i;
    END IF;
    IF p_seq > i.seq THEN
        IF b.state = 'half_open' AND p_trial_generation = b.generation THEN
            v_ts := p_trial_successes;
            v_tf := p_trial_failures;
            IF i.claimed_generation = b.generation THEN
                i.claimed := greatest(i.claimed - p_release, 0);
            END IF;
        END IF;
        UPDATE __SCHEMA__.instances
           SET lease_until_ms = __SCHEMA__.plus_ms(v_now, p_lease_ttl_ms),
               local_open = p_local_open,
               seq = p_seq,
               successes = successes + p_successes,
               failures = failures + p_failures,
               slow = slow + p_slow,
               claimed = i.claimed,
               updated_at = clock_timestamp()
         WHERE breaker = p_breaker AND id = p_instance;
    ELSE
        UPDATE __SCHEMA__.instances
           SET lease_until_ms = __SCHEMA__.plus_ms(v_now, p_lease_ttl_ms),
               local_open = p_local_open,
               updated_at = clock_timestamp()
         WHERE breaker = p_breaker AND id = p_instance;
    END IF;
    UPDATE __SCHEMA__.breakers
       SET trial_successes = trial_successes + v_ts,
           trial_failures = trial_failures + v_tf,
           mode = p_mode,
           updated_at = clock_timestamp()
     WHERE name = p_breaker
       AND (v_ts <> 0 OR v_tf <> 0 OR mode IS DISTINCT FROM p_mode);
    DELETE FROM __SCHEMA__.instances
     WHERE breaker = p_breaker
       AND __SCHEMA__.plus_ms(lease_until_ms, __SCHEMA__.forget_after_ms()) <= v_now;
    RETURN QUERY SELECT * FROM __SCHEMA__.fleet_rows(p_breaker, v_now, 0);
END
$$;

-- A compare-and-set transition: made only while the generation is p_expected. outcome is
-- 1 when this call made it.
CREATE FUNCTION __SCHEMA__.transition(
    p_breaker text, p_expected bigint, p_target text, p_cooldown_ms bigint, p_reason text)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := __SCHEMA__.now_ms();
    b __SCHEMA__.breakers;
    v_won bigint := 0;
BEGIN
    b := __SCHEMA__.lock_breaker(p_breaker, v_now);
    IF b.generation = p_expected THEN
        PERFORM __SCHEMA__.apply_change(p_breaker, p_target, p_cooldown_ms, p_reason, v_now);
        v_won := 1;
    END IF;
    RETURN QUERY SELECT * FROM __SCHEMA__.fleet_rows(p_breaker, v_now, v_won);
END
$$;

-- Claims up to p_want of p_permitted trial slots for p_instance, starting the half-open
-- episode when an OPEN record's cooldown is over. outcome is the number granted.
CREATE FUNCTION __SCHEMA__.claim_trials(
    p_breaker text, p_instance text, p_want bigint, p_permitted bigint)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := __SCHEMA__.now_ms();
    b __SCHEMA__.breakers;
    v_held bigint;
    v_granted bigint := 0;
BEGIN
    b := __SCHEMA__.lock_breaker(p_breaker, v_now);
    IF b.state = 'open' AND v_now >= b.open_until_ms AND b.forced IS NULL THEN
        PERFORM __SCHEMA__.apply_change(p_breaker, 'half_open', 0, 'cooldown elapsed', v_now);
        SELECT * INTO b FROM __SCHEMA__.breakers WHERE name = p_breaker;
    END IF;
    IF b.state = 'half_open' AND b.forced IS NULL THEN
        SELECT coalesce(sum(claimed), 0) INTO v_held
          FROM __SCHEMA__.instances
         WHERE breaker = p_breaker AND lease_until_ms > v_now
           AND claimed_generation = b.generation;
        v_granted := least(p_want, greatest(p_permitted - v_held, 0));
        INSERT INTO __SCHEMA__.instances (breaker, id) VALUES (p_breaker, p_instance)
        ON CONFLICT (breaker, id) DO NOTHING;
        UPDATE __SCHEMA__.instances
           SET claimed = CASE WHEN claimed_generation = b.generation THEN claimed ELSE 0 END
                         + v_granted,
               claimed_generation = b.generation,
               updated_at = clock_timestamp()
         WHERE breaker = p_breaker AND id = p_instance;
    END IF;
    RETURN QUERY SELECT * FROM __SCHEMA__.fleet_rows(p_breaker, v_now, v_granted);
END
$$;

-- Sets (p_forced 'open' or 'closed', for p_for_ms or until cleared when null) or clears
-- (p_forced null) an operator's forced state. Clearing also closes the record with fresh
-- counters: a fleet-wide reset.
CREATE FUNCTION __SCHEMA__.force(p_breaker text, p_forced text, p_for_ms bigint)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := __SCHEMA__.now_ms();
    b __SCHEMA__.breakers;
    g bigint;
BEGIN
    b := __SCHEMA__.lock_breaker(p_breaker, v_now);
    IF p_forced IS NOT NULL THEN
        UPDATE __SCHEMA__.breakers
           SET forced = p_forced,
               forced_until_ms = CASE WHEN p_for_ms IS NULL THEN NULL
                                      ELSE __SCHEMA__.plus_ms(v_now, p_for_ms) END,
               generation = generation + 1,
               changed_ms = v_now,
               reason = 'forced ' || p_forced,
               updated_at = clock_timestamp()
         WHERE name = p_breaker
        RETURNING generation INTO g;
        PERFORM pg_notify('__CHANNEL__', g::text || ':' || p_breaker);
    ELSE
        UPDATE __SCHEMA__.breakers SET forced = NULL, forced_until_ms = NULL
         WHERE name = p_breaker;
        PERFORM __SCHEMA__.apply_change(p_breaker, 'closed', 0, 'reset', v_now);
    END IF;
    RETURN QUERY SELECT * FROM __SCHEMA__.fleet_rows(p_breaker, v_now, 0);
END
$$;

-- Dashboards and alerts: one row per breaker.
CREATE VIEW __SCHEMA__.breaker_status AS
WITH now AS (SELECT __SCHEMA__.now_ms() AS ms)
SELECT b.name,
       b.state,
       CASE WHEN b.forced_until_ms <= now.ms THEN NULL ELSE b.forced END AS forced,
       CASE WHEN b.forced_until_ms <= now.ms THEN NULL
            ELSE to_timestamp(b.forced_until_ms / 1000.0) END AS forced_until,
       b.generation,
       coalesce(sum(i.successes + i.failures), 0)::bigint AS calls,
       coalesce(sum(i.failures), 0)::bigint AS failures,
       coalesce(sum(i.failures)::float8 / nullif(sum(i.successes + i.failures), 0), 0)
           AS failure_rate,
       count(i.id) FILTER (WHERE i.lease_until_ms > now.ms) AS live_instances,
       count(i.id) FILTER (WHERE i.lease_until_ms > now.ms AND i.local_open) AS open_votes,
       CASE WHEN b.state = 'open' THEN greatest(b.open_until_ms - now.ms, 0) ELSE 0 END
           AS cooldown_remaining_ms,
       b.trips,
       b.opens,
       b.transitions,
       b.mode,
       b.reason,
       to_timestamp(b.changed_ms / 1000.0) AS changed_at,
       b.updated_at
FROM __SCHEMA__.breakers b
CROSS JOIN now
LEFT JOIN __SCHEMA__.instances i ON i.breaker = b.name
GROUP BY b.name, now.ms;

-- Dashboards and alerts: one row per instance still remembered.
CREATE VIEW __SCHEMA__.instance_status AS
WITH now AS (SELECT __SCHEMA__.now_ms() AS ms)
SELECT i.breaker,
       i.id AS instance,
       i.lease_until_ms > now.ms AS live,
       greatest(i.lease_until_ms - now.ms, 0) AS lease_remaining_ms,
       i.local_open,
       i.successes,
       i.failures,
       i.slow,
       i.seq,
       i.updated_at
FROM __SCHEMA__.instances i
CROSS JOIN now;
