//! Helpers shared by the tests: run each test body under smol and under async-std.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The executor a test body runs on.
#[derive(Clone, Copy, Debug)]
pub enum Rt {
    Smol,
    AsyncStd,
}

/// A spawned task's result (smol cancels it when dropped; async-std detaches it).
pub type Join<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Rt {
    pub fn spawn<T: Send + 'static>(self, f: impl Future<Output = T> + Send + 'static) -> Join<T> {
        match self {
            Rt::Smol => Box::pin(smol::spawn(f)),
            Rt::AsyncStd => Box::pin(async_std::task::spawn(f)),
        }
    }
}

/// Runs a test body once under `smol::block_on` and once under `async_std::task::block_on`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn smol() {
                smol::block_on(super::$name(crate::common::Rt::Smol));
            }

            #[test]
            fn async_std() {
                async_std::task::block_on(super::$name(crate::common::Rt::AsyncStd));
            }
        }
    )*};
}

pub const LIMIT: Duration = Duration::from_secs(10);

/// `Some(output)`, or `None` when `f` takes longer than `limit`.
pub async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(f.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

pub async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}
