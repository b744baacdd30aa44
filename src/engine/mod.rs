//! The engine: a pool plus its dialect.
//!
//! - `sync`: [`Engine`], [`EngineConnection`], [`Transaction`] over a
//!   threaded [`Pool`](crate::Pool).
//! - `tokio` (feature `tokio`): [`AsyncEngine`], [`AsyncEngineConnection`],
//!   [`AsyncTransaction`] over an [`AsyncPool`](crate::AsyncPool).
//! - `state`: what both share, sans-IO: the transaction's state machine,
//!   its errors, and what a driver error means for the connection.
//!
//! The items whose code is the same in both shells but for the names of
//! the types (the engine's fields and accessors, the transaction's handle
//! and its drop) are written once, in `shared_items!`.

/// The items both engines share but for their type names: the engine (a
/// pool and its dialect), the connection's accessors, the transaction's
/// handle and its `Drop`, which asks [`state::TxState::on_drop`] what to do
/// and has the connection's `abandon` (the shell's own) carry it out.
macro_rules! shared_items {
    (
        $(#[$engine_doc:meta])*
        engine $Engine:ident over $Pool:ident of $Driver:ident;
        connection $Conn:ident holding $Pooled:ident;
        $(#[$tx_doc:meta])*
        transaction $Tx:ident;
    ) => {
        $(#[$engine_doc])*
        pub struct $Engine<D: $Driver> {
            pool: $Pool<D>,
            dialect: ::std::sync::Arc<dyn $crate::Dialect>,
        }

        impl<D: $Driver> Clone for $Engine<D> {
            fn clone(&self) -> Self {
                $Engine {
                    pool: self.pool.clone(),
                    dialect: ::std::sync::Arc::clone(&self.dialect),
                }
            }
        }

        impl<D: $Driver> ::std::fmt::Debug for $Engine<D> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($Engine)).field("pool", &self.pool).finish()
            }
        }

        impl<D: $Driver> $Engine<D> {
            /// An engine over `pool`, classifying errors with the driver's
            /// dialect.
            pub fn new(pool: $Pool<D>) -> Self {
                let dialect = ::std::sync::Arc::clone(pool.dialect());
                $Engine { pool, dialect }
            }

            /// The pool.
            pub fn pool(&self) -> &$Pool<D> {
                &self.pool
            }

            /// The dialect.
            pub fn dialect(&self) -> &::std::sync::Arc<dyn $crate::Dialect> {
                &self.dialect
            }
        }

        impl<D: $Driver> $Conn<D> {
            /// Whether the connection was invalidated and not yet replaced.
            pub fn is_invalidated(&self) -> bool {
                self.conn.is_none()
            }

            /// The pooled connection held now, if any (none after
            /// invalidation, until the next call checks out another).
            pub fn held(&self) -> Option<&$Pooled<D>> {
                self.conn.as_ref()
            }

            /// The pooled connection held now, mutably.
            pub fn held_mut(&mut self) -> Option<&mut $Pooled<D>> {
                self.conn.as_mut()
            }
        }

        $(#[$tx_doc])*
        pub struct $Tx<'c, D: $Driver> {
            conn: &'c mut $Conn<D>,
            state: super::state::TxState,
        }

        impl<D: $Driver> ::std::fmt::Debug for $Tx<'_, D> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($Tx)).field("state", &self.state).finish()
            }
        }

        impl<D: $Driver> $Tx<'_, D> {
            /// Whether the connection died inside this transaction.
            pub fn is_pending_rollback(&self) -> bool {
                self.state.is_pending_rollback()
            }
        }

        impl<D: $Driver> Drop for $Tx<'_, D> {
            fn drop(&mut self) {
                if let Some(action) = self.state.on_drop(::std::thread::panicking()) {
                    self.conn.abandon(action);
                }
            }
        }
    };
}

mod state;
mod sync;
#[cfg(feature = "tokio")]
mod tokio;

pub use self::sync::{Engine, EngineConnection, Transaction};
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncEngine, AsyncEngineConnection, AsyncTransaction};
