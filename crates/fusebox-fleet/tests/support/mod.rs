//! What the fleet tests on tokio's paused clock share.

use std::time::Duration;

use fusebox_core::breaker::Breaker;

/// Calls until the fleet grants this instance a trial slot, and succeeds.
pub async fn succeed_a_trial(b: &Breaker) {
    for _ in 0..100 {
        if let Ok(permit) = b.try_acquire() {
            assert!(permit.is_trial());
            permit.success();
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no trial slot granted in a second");
}
