-- Syncs, transitions and claims whose cost does not grow with the fleet. The fleet's totals
-- (outcomes reported, live instances, open votes) are kept as they change, in a few counter
-- rows per breaker, so a sync no longer reads, sums or deletes every instance, and takes
-- the breaker's row lock only when it changes the record (trial outcomes, released slots,
-- a new mode).
--
-- The functions of versions 1 and 2 keep working for builds still running during a rolling
-- upgrade: their flush now keeps the totals too, and still answers every instance.

-- Whether the instance is counted in its breaker's live instances (and, with local_open,
-- its open votes). Set by the instance's flush; cleared by the sweep once its lease ended.
ALTER TABLE __SCHEMA__.instances
    ADD COLUMN counted boolean NOT NULL DEFAULT false;

-- Finds leases that ended, counted ones to uncount and old ones to forget, from the low end
-- and a few at a time.
CREATE INDEX instances_lease ON __SCHEMA__.instances (breaker, counted, lease_until_ms);

-- Finds the holders of trial slots without visiting the other instances.
CREATE INDEX instances_claims ON __SCHEMA__.instances (breaker, claimed_generation)
    WHERE claimed > 0;

-- The fleet's totals, split over a few rows per breaker so that concurrent flushes rarely
-- wait on one another: a flush adds its changes to the row of its instance's shard, and
-- the totals are the sums over a breaker's rows. Only the sums mean anything: the sweep
-- takes an expired instance off the row of the instance that swept it.
CREATE TABLE __SCHEMA__.fleet_counts (
    breaker   text NOT NULL REFERENCES __SCHEMA__.breakers (name) ON DELETE CASCADE,
    shard     integer NOT NULL,
    live      bigint NOT NULL DEFAULT 0,
    open      bigint NOT NULL DEFAULT 0,
    successes bigint NOT NULL DEFAULT 0,
    failures  bigint NOT NULL DEFAULT 0,
    slow      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (breaker, shard)
);

-- Outcomes already reported before the upgrade count in the totals.
INSERT INTO __SCHEMA__.fleet_counts (breaker, shard, successes, failures, slow)
SELECT breaker, 0, sum(successes), sum(failures), sum(slow)
  FROM __SCHEMA__.instances
 GROUP BY breaker;

CREATE FUNCTION __SCHEMA__.count_shard(p_instance text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtext(p_instance) & 15 $$;

-- What the hot-path functions answer: one row with the record, the fleet's totals and,
-- for a flush, the flushing instance (null columns otherwise).
CREATE TYPE __SCHEMA__.fleet_summary AS (
    outcome          bigint,
    now_ms           bigint,
    generation       bigint,
    state            text,
    open_until_ms    bigint,
    trips            bigint,
    trial_successes  bigint,
    trial_failures   bigint,
    forced           text,
    forced_until_ms  bigint,
    transitions      bigint,
    opens            bigint,
    changed_ms       bigint,
    mode             text,
    reason           text,
    live_instances   bigint,
    open_votes       bigint,
    live_claims      bigint,
    fleet_successes  bigint,
    fleet_failures   bigint,
    fleet_slow       bigint,
    instance         text,
    lease_until_ms   bigint,
    seq              bigint,
    successes        bigint,
    failures         bigint,
    slow             bigint,
    local_open       boolean,
    claims           bigint
);

-- One breaker's summary at p_now: the record, the totals from its counter rows, the slots
-- held by live claimants of the current half-open episode, and p_instance's entry.
CREATE FUNCTION __SCHEMA__.summary_row(
    p_name text, p_now bigint, p_outcome bigint, p_instance text)
RETURNS SETOF __SCHEMA__.fleet_summary
LANGUAGE sql STABLE AS $$
    SELECT p_outcome, p_now, b.generation, b.state, b.open_until_ms, b.trips,
           b.trial_successes, b.trial_failures,
           CASE WHEN b.forced_until_ms <= p_now THEN NULL ELSE b.forced END,
           CASE WHEN b.forced_until_ms <= p_now THEN NULL ELSE b.forced_until_ms END,
           b.transitions, b.opens, b.changed_ms, b.mode, b.reason,
           coalesce(c.live, 0), coalesce(c.open, 0),
           CASE WHEN b.state = 'half_open' THEN
               (SELECT coalesce(sum(h.claimed), 0)::bigint
                  FROM __SCHEMA__.instances h
                 WHERE h.breaker = b.name AND h.claimed > 0
                   AND h.claimed_generation = b.generation AND h.lease_until_ms > p_now)
           ELSE 0 END,
           coalesce(c.successes, 0), coalesce(c.failures, 0), coalesce(c.slow, 0),
           i.id, i.lease_until_ms, i.seq, i.successes, i.failures, i.slow, i.local_open,
           CASE WHEN i.lease_until_ms > p_now AND i.claimed_generation = b.generation
                     AND b.state = 'half_open'
                THEN i.claimed ELSE 0 END
    FROM __SCHEMA__.breakers b
    LEFT JOIN LATERAL (
        SELECT greatest(sum(f.live), 0)::bigint AS live, greatest(sum(f.open), 0)::bigint AS open,
               sum(f.successes)::bigint AS successes, sum(f.failures)::bigint AS failures,
               sum(f.slow)::bigint AS slow
          FROM __SCHEMA__.fleet_counts f
         WHERE f.breaker = b.name
    ) c ON true
    LEFT JOIN __SCHEMA__.instances i ON i.breaker = b.name AND i.id = p_instance
    WHERE b.name = p_name
$$;

-- One instance's flush: renews its lease and verdict, starts a new sequence for a new
-- incarnation, adds its deltas when p_seq is newer than the last applied, counts its trials
-- only for the current half-open episode, gives back released trial slots, and keeps the
-- fleet's totals. Leases that ended are uncounted, and long-ended ones forgotten, a bounded
-- number per flush. The breaker's row is locked only when the flush changes it.
CREATE FUNCTION __SCHEMA__.sync_v3(
    p_breaker text, p_instance text, p_lease_ttl_ms bigint, p_seq bigint,
    p_successes bigint, p_failures bigint, p_slow bigint,
    p_trial_generation bigint, p_trial_successes bigint, p_trial_failures bigint,
    p_release bigint, p_local_open boolean, p_mode text, p_incarnation bigint)
RETURNS SETOF __SCHEMA__.fleet_summary
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := __SCHEMA__.now_ms();
    b __SCHEMA__.breakers;
    i __SCHEMA__.instances;
    v_locked boolean := false;
    v_ds bigint := 0;
    v_df bigint := 0;
    v_dslow bigint := 0;
    v_ts bigint := 0;
    v_tf bigint := 0;
    v_live bigint;
    v_open bigint;
    v_gone bigint;
    v_gone_open bigint;
BEGIN
    SELECT * INTO b FROM __SCHEMA__.breakers WHERE name = p_breaker;
    IF NOT FOUND OR p_trial_successes <> 0 OR p_trial_failures <> 0 OR p_release <> 0
       OR b.mode IS DISTINCT FROM p_mode THEN
        b := __SCHEMA__.lock_breaker(p_breaker, v_now);
        v_locked := true;
    END IF;
    SELECT * INTO i FROM __SCHEMA__.instances
     WHERE breaker = p_breaker AND id = p_instance FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO __SCHEMA__.instances (breaker, id) VALUES (p_breaker, p_instance)
        ON CONFLICT (breaker, id) DO NOTHING;
        SELECT * INTO i FROM __SCHEMA__.instances
         WHERE breaker = p_breaker AND id = p_instance FOR UPDATE;
    END IF;
    IF p_incarnation <> i.incarnation THEN
        i.seq := 0;
        i.claimed := 0;
    END IF;
    IF p_seq > i.seq THEN
        i.seq := p_seq;
        v_ds := p_successes;
        v_df := p_failures;
        v_dslow := p_slow;
        IF v_locked AND b.state = 'half_open' AND p_trial_generation = b.generation THEN
            v_ts := p_trial_successes;
            v_tf := p_trial_failures;
            IF i.claimed_generation = b.generation THEN
                i.claimed := greatest(i.claimed - p_release, 0);
            END IF;
        END IF;
    END IF;
    -- Counted from now on; an open vote counts while the instance is.
    v_live := CASE WHEN i.counted THEN 0 ELSE 1 END;
    v_open := p_local_open::int - (i.counted AND i.local_open)::int;
    UPDATE __SCHEMA__.instances
       SET lease_until_ms = __SCHEMA__.plus_ms(v_now, p_lease_ttl_ms),
           local_open = p_local_open,
           incarnation = p_incarnation,
           seq = i.seq,
           successes = successes + v_ds,
           failures = failures + v_df,
           slow = slow + v_dslow,
           claimed = i.claimed,
           counted = true,
           updated_at = clock_timestamp()
     WHERE breaker = p_breaker AND id = p_instance;
    IF v_locked THEN
        UPDATE __SCHEMA__.breakers
           SET trial_successes = trial_successes + v_ts,
               trial_failures = trial_failures + v_tf,
               mode = p_mode,
               updated_at = clock_timestamp()
         WHERE name = p_breaker
           AND (v_ts <> 0 OR v_tf <> 0 OR mode IS DISTINCT FROM p_mode);
    END IF;
    -- Uncounts instances whose lease ended (those another flush holds are left to it).
    WITH gone AS (
        UPDATE __SCHEMA__.instances
           SET counted = false
         WHERE (breaker, id) IN (
                   SELECT breaker, id FROM __SCHEMA__.instances
                    WHERE breaker = p_breaker AND counted AND lease_until_ms <= v_now
                    ORDER BY lease_until_ms
                    LIMIT 64
                    FOR UPDATE SKIP LOCKED)
           AND counted AND lease_until_ms <= v_now
        RETURNING local_open
    )
    SELECT count(*), count(*) FILTER (WHERE local_open) INTO v_gone, v_gone_open FROM gone;
    -- Forgets instances whose lease ended long ago.
    DELETE FROM __SCHEMA__.instances
     WHERE (breaker, id) IN (
               SELECT breaker, id FROM __SCHEMA__.instances
                WHERE breaker = p_breaker AND NOT counted
                  AND __SCHEMA__.plus_ms(lease_until_ms, __SCHEMA__.forget_after_ms()) <= v_now
                ORDER BY lease_until_ms
                LIMIT 16
                FOR UPDATE SKIP LOCKED)
       AND NOT counted;
    v_live := v_live - v_gone;
    v_open := v_open - v_gone_open;
    IF v_live <> 0 OR v_open <> 0 OR v_ds <> 0 OR v_df <> 0 OR v_dslow <> 0 THEN
        INSERT INTO __SCHEMA__.fleet_counts AS f
               (breaker, shard, live, open, successes, failures, slow)
        VALUES (p_breaker, __SCHEMA__.count_shard(p_instance), v_live, v_open, v_ds, v_df,
                v_dslow)
        ON CONFLICT (breaker, shard) DO UPDATE
           SET live = f.live + excluded.live,
               open = f.open + excluded.open,
               successes = f.successes + excluded.successes,
               failures = f.failures + excluded.failures,
               slow = f.slow + excluded.slow;
    END IF;
    RETURN QUERY SELECT * FROM __SCHEMA__.summary_row(p_breaker, v_now, 0, p_instance);
END
$$;

-- The flush of versions 1 and 2 (builds still running during a rolling upgrade): the same
-- flush, answering every instance as before.
CREATE OR REPLACE FUNCTION __SCHEMA__.sync(
    p_breaker text, p_instance text, p_lease_ttl_ms bigint, p_seq bigint,
    p_successes bigint, p_failures bigint, p_slow bigint,
    p_trial_generation bigint, p_trial_successes bigint, p_trial_failures bigint,
    p_release bigint, p_local_open boolean, p_mode text, p_incarnation bigint)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
BEGIN
    SELECT now_ms INTO v_now FROM __SCHEMA__.sync_v3(p_breaker, p_instance, p_lease_ttl_ms,
        p_seq, p_successes, p_failures, p_slow, p_trial_generation, p_trial_successes,
        p_trial_failures, p_release, p_local_open, p_mode, p_incarnation);
    RETURN QUERY SELECT * FROM __SCHEMA__.fleet_rows(p_breaker, v_now, 0);
END
$$;

-- A compare-and-set transition: made only while the generation is p_expected. outcome is
-- 1 when this call made it. Answers the summary.
CREATE FUNCTION __SCHEMA__.transition_v3(
    p_breaker text, p_expected bigint, p_target text, p_cooldown_ms bigint, p_reason text)
RETURNS SETOF __SCHEMA__.fleet_summary
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
    RETURN QUERY SELECT * FROM __SCHEMA__.summary_row(p_breaker, v_now, v_won, NULL);
END
$$;

-- Claims up to p_want of p_permitted trial slots for p_instance, starting the half-open
-- episode when an OPEN record's cooldown is over. outcome is the number granted. Only the
-- holders of slots are visited. Answers the summary.
CREATE FUNCTION __SCHEMA__.claim_trials_v3(
    p_breaker text, p_instance text, p_want bigint, p_permitted bigint)
RETURNS SETOF __SCHEMA__.fleet_summary
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
         WHERE breaker = p_breaker AND claimed > 0 AND claimed_generation = b.generation
           AND lease_until_ms > v_now;
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
    RETURN QUERY SELECT * FROM __SCHEMA__.summary_row(p_breaker, v_now, v_granted, NULL);
END
$$;
