//! The two ways to reach Redis: one server through a connection manager, or a Redis Cluster
//! through the `redis` crate's cluster connection, which routes each command by its first
//! key's slot and follows the cluster's topology.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

/// Where the store's data lives, and its connection once made.
pub(crate) enum Backend {
    Single {
        client: redis::Client,
        connection: OnceCell<ConnectionManager>,
    },
    Cluster {
        /// The seed nodes, kept to open the subscription's own cluster connection.
        seeds: Vec<redis::ConnectionInfo>,
        // Boxed: a cluster client's settings are several times a single client's size.
        client: Box<ClusterClient>,
        connection: OnceCell<ClusterConnection>,
    },
}

/// A connection to either backend; cheap to clone (both are multiplexed handles).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Backend {
    pub(crate) fn single(client: redis::Client) -> Backend {
        Backend::Single {
            client,
            connection: OnceCell::new(),
        }
    }

    pub(crate) fn cluster(
        seeds: Vec<redis::ConnectionInfo>,
        timeout: Duration,
    ) -> RedisResult<Backend> {
        let client = Box::new(cluster_builder(&seeds, timeout).build()?);
        Ok(Backend::Cluster {
            seeds,
            client,
            connection: OnceCell::new(),
        })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster { .. })
    }

    /// The shared connection, made on first use. A failed attempt is not kept: the next
    /// call tries again.
    pub(crate) async fn connection(&self, timeout: Duration) -> RedisResult<Connection> {
        match self {
            Backend::Single { client, connection } => {
                let manager = connection
                    .get_or_try_init(|| async {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(timeout))
                            .set_response_timeout(Some(timeout))
                            .set_number_of_retries(1)
                            .set_max_delay(Duration::from_millis(500));
                        ConnectionManager::new_lazy_with_config(client.clone(), config)
                    })
                    .await?;
                Ok(Connection::Single(manager.clone()))
            }
            Backend::Cluster {
                client, connection, ..
            } => {
                let cluster = connection
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(Connection::Cluster(cluster.clone()))
            }
        }
    }
}

/// The settings every cluster connection of a store shares.
pub(crate) fn cluster_builder(
    seeds: &[redis::ConnectionInfo],
    timeout: Duration,
) -> ClusterClientBuilder {
    ClusterClientBuilder::new(seeds.iter().cloned())
        .connection_timeout(timeout)
        .response_timeout(timeout)
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
