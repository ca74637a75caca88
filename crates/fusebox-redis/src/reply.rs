//! Decoding the scripts' replies into fleet views.

use fusebox_fleet::{
    BreakerRecord, FleetState, FleetTotals, FleetView, ForcedState, InstanceView, StoreError,
};
use redis::Value;

/// Reads the flat array the scripts return: 15 record fields (the last is the script's own
/// result), a flag (1 when the fleet's totals follow) and the 6 totals (live instances, open
/// votes, live claims, successes, failures, slow), the instance count, then 9 fields per
/// instance.
pub(crate) fn decode_view(name: &str, reply: &Value) -> Result<(FleetView, u64), StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::Protocol(format!(
            "unexpected reply to a script: {reply:?}"
        )));
    };
    let text = |i: usize| -> Result<String, StoreError> {
        match items.get(i) {
            Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            Some(Value::SimpleString(s)) => Ok(s.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            other => Err(StoreError::Protocol(format!(
                "field {i} of a script reply: {other:?}"
            ))),
        }
    };
    let number = |i: usize| -> Result<u64, StoreError> {
        let t = text(i)?;
        t.parse::<u64>()
            .map_err(|_| StoreError::Protocol(format!("field {i} is not a count: {t:?}")))
    };
    let small =
        |i: usize| -> Result<u32, StoreError> { Ok(u32::try_from(number(i)?).unwrap_or(u32::MAX)) };
    let state = text(2)?;
    let forced = text(7)?;
    let forced_until = number(8)?;
    let record = BreakerRecord {
        generation: number(1)?,
        state: FleetState::parse(&state)
            .ok_or_else(|| StoreError::Protocol(format!("unknown state {state:?}")))?,
        open_until_ms: number(3)?,
        trips: small(4)?,
        trial_successes: small(5)?,
        trial_failures: small(6)?,
        forced: ForcedState::parse(&forced),
        forced_until_ms: (forced_until > 0).then_some(forced_until),
        transitions: number(9)?,
        opens: number(10)?,
        changed_ms: number(11)?,
        mode: text(12)?,
        reason: text(13)?,
    };
    let extra = number(14)?;
    let totals = match number(15)? {
        0 => None,
        _ => Some(FleetTotals {
            live_instances: small(16)?,
            open_votes: small(17)?,
            live_claims: small(18)?,
            successes: number(19)?,
            failures: number(20)?,
            slow: number(21)?,
        }),
    };
    let count = usize::try_from(number(22)?).unwrap_or(usize::MAX);
    let mut instances = Vec::with_capacity(count.min(1024));
    for k in 0..count {
        let at = 23 + k * 9;
        instances.push(InstanceView {
            id: text(at)?,
            live: number(at + 1)? == 1,
            lease_remaining_ms: number(at + 2)?,
            local_open: number(at + 3)? == 1,
            successes: number(at + 4)?,
            failures: number(at + 5)?,
            slow: number(at + 6)?,
            seq: number(at + 7)?,
            trials_claimed: small(at + 8)?,
        });
    }
    Ok((
        FleetView {
            name: name.to_owned(),
            now_ms: number(0)?,
            record,
            instances,
            totals,
        },
        extra,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_replies_are_protocol_errors() {
        let err = decode_view("a", &Value::Int(3)).unwrap_err();
        assert!(matches!(err, StoreError::Protocol(_)));
        let short = Value::Array(vec![Value::BulkString(b"1".to_vec())]);
        assert!(matches!(
            decode_view("a", &short).unwrap_err(),
            StoreError::Protocol(_)
        ));
    }
}
