//! Retry budgets: a token bucket that caps retries against a failing dependency.
