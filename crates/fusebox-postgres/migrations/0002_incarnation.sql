-- Each run of an instance draws a fresh incarnation. A flush from a new incarnation starts
-- the instance's sequence again and frees the trial slots its previous run held, so an
-- instance restarted under the same id is never taken for a replay of its previous run.
ALTER TABLE __SCHEMA__.instances
    ADD COLUMN incarnation bigint NOT NULL DEFAULT 0;

-- One instance's flush: renews its lease and verdict, starts a new sequence for a new
-- incarnation, adds its deltas when p_seq is newer than the last applied, counts its trials
-- only for the current half-open episode, and gives back released trial slots.
CREATE FUNCTION __SCHEMA__.sync(
    p_breaker text, p_instance text, p_lease_ttl_ms bigint, p_seq bigint,
    p_successes bigint, p_failures bigint, p_slow bigint,
    p_trial_generation bigint, p_trial_successes bigint, p_trial_failures bigint,
    p_release bigint, p_local_open boolean, p_mode text, p_incarnation bigint)
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
    IF p_incarnation <> i.incarnation THEN
        i.seq := 0;
        i.claimed := 0;
        UPDATE __SCHEMA__.instances
           SET incarnation = p_incarnation, seq = 0, claimed = 0
         WHERE breaker = p_breaker AND id = p_instance;
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

-- The flush of a build from before incarnations, still running during a rolling upgrade:
-- one run, incarnation 0, as before.
CREATE OR REPLACE FUNCTION __SCHEMA__.sync(
    p_breaker text, p_instance text, p_lease_ttl_ms bigint, p_seq bigint,
    p_successes bigint, p_failures bigint, p_slow bigint,
    p_trial_generation bigint, p_trial_successes bigint, p_trial_failures bigint,
    p_release bigint, p_local_open boolean, p_mode text)
RETURNS SETOF __SCHEMA__.fleet_row
LANGUAGE sql AS $$
    SELECT * FROM __SCHEMA__.sync(p_breaker, p_instance, p_lease_ttl_ms, p_seq, p_successes,
        p_failures, p_slow, p_trial_generation, p_trial_successes, p_trial_failures,
        p_release, p_local_open, p_mode, 0::bigint)
$$;
