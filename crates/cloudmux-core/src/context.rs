//! The request context every [`Gateway`](crate::Gateway) operation takes:
//! who asks, and the environment its bucket-policy decisions see (the S3
//! action, the client's address, TLS, condition keys). It is a parameter, not
//! ambient state, so an operation without one does not compile, and no
//! authorization decision can skip a policy for want of its environment.

use std::ops::Deref;

use crate::policy::RequestEnv;
use crate::Principal;

/// Who asks, and the environment of its request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    principal: Principal,
    env: RequestEnv,
}

impl RequestContext {
    /// The context of a request by `principal` in environment `env`.
    pub fn new(principal: Principal, env: RequestEnv) -> Self {
        Self { principal, env }
    }

    /// The context of cloudmux's own background work under the system
    /// principal `name` (`replication`, `lifecycle`, `gc`).
    pub fn system(name: &'static str) -> Self {
        Self::new(Principal::System(name), RequestEnv::default())
    }

    /// Who asks.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The policy environment of the request.
    pub fn env(&self) -> &RequestEnv {
        &self.env
    }
}

/// A context is used where its principal is, for ownership and ACL checks.
impl Deref for RequestContext {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}
