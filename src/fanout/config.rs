//! Fan-out wired from a worker's environment: which KV namespace and queue it
//! uses and which settings it reads, declared once as a `const` and opened per
//! request or per delivery.

use std::cell::RefCell;
use std::rc::Rc;

use super::model::{declared_subscriptions, DeliveryTask, Subscription};
use super::publisher::{Fanout, DELIVERY_KIND};
use super::ssrf::SsrfPolicy;
use crate::error::Error;
use crate::kv::Kv;
use crate::object::Objects;
use crate::platform::setting;
use crate::queue::{Consumer, Message, Producer};

/// Where a worker's fan-out lives and what it reads from the environment.
///
/// - `store`: the KV binding for events and delivery logs;
/// - the `TOPICS` Durable Object binding (another name with
///   [`topics_binding`](Self::topics_binding)): each topic's subscriptions, in
///   an object of class [`topics`](super::topics) that applies concurrent
///   changes one at a time (register it: `entry!(…, objects: { Topics:
///   edgeway::fanout::topics })`);
/// - `queue`: the producer binding that carries delivery tasks (the worker
///   consumes that queue and registers [`Consumer::fanout`]);
/// - the `SUBSCRIPTIONS` setting: subscriptions declared in configuration, as a
///   JSON list, webhook secrets written `env:NAME` (see
///   [`declared_subscriptions`]); parsed once per isolate;
/// - the `WEBHOOK_ALLOW_HOSTS` setting: a comma-separated list of hosts exempt from
///   the SSRF guard, and allowed over `http`, for local development. Unset in
///   production, where webhook targets must be public `https` URLs.
///
/// ```no_run
/// use edgeway::fanout::{FanoutConfig, NewEvent};
/// use edgeway::queue::Consumer;
/// use edgeway::worker::Env;
/// use edgeway::{App, Error, Json, Path, StatusCode};
///
/// const FANOUT: FanoutConfig = FanoutConfig::new("STORE", "EVENTS");
///
/// async fn publish(
///     env: Env,
///     Path(topic): Path<String>,
///     Json(event): Json<NewEvent>,
/// ) -> Result<StatusCode, Error> {
///     FANOUT.open(&env)?.publish(&topic, event).await?;
///     Ok(StatusCode::ACCEPTED)
/// }
///
/// fn app() -> App {
///     App::new().post("/topics/{topic}/events", publish)
/// }
///
/// fn consumer() -> Consumer {
///     Consumer::new().fanout(FANOUT)
/// }
///
/// edgeway::entry!(fetch: app, queue: consumer);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FanoutConfig {
    store: &'static str,
    topics: &'static str,
    queue: &'static str,
    subscriptions_setting: &'static str,
    allow_hosts_setting: &'static str,
    event_ttl_seconds: Option<u64>,
}

/// The subscriptions one setting declares, parsed.
type DeclaredBy = (&'static str, Rc<[Subscription]>);

impl FanoutConfig {
    /// Fan-out over the KV binding `store` and the queue binding `queue`, reading
    /// the `SUBSCRIPTIONS` and `WEBHOOK_ALLOW_HOSTS` settings.
    pub const fn new(store: &'static str, queue: &'static str) -> Self {
        Self {
            store,
            topics: "TOPICS",
            queue,
            subscriptions_setting: "SUBSCRIPTIONS",
            allow_hosts_setting: "WEBHOOK_ALLOW_HOSTS",
            event_ttl_seconds: None,
        }
    }

    /// Keeps subscriptions in the Durable Object namespace bound as `name`
    /// instead of `TOPICS`.
    pub const fn topics_binding(mut self, name: &'static str) -> Self {
        self.topics = name;
        self
    }

    /// Reads declared subscriptions from the setting `name` instead.
    pub const fn subscriptions_setting(mut self, name: &'static str) -> Self {
        self.subscriptions_setting = name;
        self
    }

    /// Reads the development allow-list of webhook hosts from the setting `name`.
    pub const fn allow_hosts_setting(mut self, name: &'static str) -> Self {
        self.allow_hosts_setting = name;
        self
    }

    /// How long events stay replayable (see [`Fanout::event_ttl`]).
    pub const fn event_ttl(mut self, seconds: u64) -> Self {
        self.event_ttl_seconds = Some(seconds);
        self
    }

    /// The webhook URL policy the environment asks for: production unless the
    /// allow-list setting names hosts.
    pub fn policy(&self, env: &worker::Env) -> SsrfPolicy {
        SsrfPolicy::from_allow_list(&setting(env, self.allow_hosts_setting).unwrap_or_default())
    }

    /// The publisher, with the declared subscriptions. A declaration that does not
    /// parse, names a missing secret or an unsafe URL fails every call with the
    /// reason, rather than silently publishing to fewer subscribers.
    pub fn open(&self, env: &worker::Env) -> Result<Fanout, Error> {
        let policy = self.policy(env);
        let declared = self.declared(env, &policy)?;
        let fanout = Fanout::new(
            Kv::from_env(env, self.store)?,
            Objects::from_env(env, self.topics)?,
            Producer::from_env(env, self.queue)?,
            policy,
        )
        .declare(declared);
        Ok(match self.event_ttl_seconds {
            Some(seconds) => fanout.event_ttl(seconds),
            None => fanout,
        })
    }

    /// The declared subscriptions, parsed once per isolate: a Worker's settings do
    /// not change under a running isolate, and every publish and delivery needs them.
    fn declared(
        &self,
        env: &worker::Env,
        policy: &SsrfPolicy,
    ) -> Result<Rc<[Subscription]>, Error> {
        thread_local! {
            static DECLARED: RefCell<Vec<DeclaredBy>> = const { RefCell::new(Vec::new()) };
        }
        let name = self.subscriptions_setting;
        let cached = DECLARED.with_borrow(|all| {
            all.iter()
                .find(|(setting, _)| *setting == name)
                .map(|(_, subs)| subs.clone())
        });
        if let Some(subs) = cached {
            return Ok(subs);
        }
        let parsed: Rc<[Subscription]> = match setting(env, name) {
            Some(json) => declared_subscriptions(&json, policy, |secret| setting(env, secret))?,
            None => Vec::new(),
        }
        .into();
        DECLARED.with_borrow_mut(|all| all.push((name, parsed.clone())));
        Ok(parsed)
    }
}

impl Consumer {
    /// Delivers the fan-out tasks of `config` (envelopes of kind
    /// [`DELIVERY_KIND`]): signed webhooks, queues and Lambda, each retried on
    /// this consumer's schedule and logged per delivery.
    pub fn fanout(self, config: FanoutConfig) -> Self {
        self.on(
            DELIVERY_KIND,
            move |message: Message<DeliveryTask>| async move {
                config.open(message.env())?.deliver(&message).await
            },
        )
    }
}
