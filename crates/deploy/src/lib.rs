//! # switchyard-deploy
//!
//! Blue/green and canary deployments of consumers (docs/design.md, "Handoff
//! between slots"), separate-groups strategy: every slot has its own group
//! (`<group>-<slot>`), standby members are subscribed and paused through the
//! desired state's `owners`, and partitions move between slots by a
//! drain-verified handoff:
//!
//! 1. write v+1: the moving partitions are owned by nobody (freeze);
//! 2. wait until every live instance of the active slot acknowledged v+1
//!    (applied, the moving partitions it holds paused: drained, committed),
//!    or the active group has no members;
//! 3. read the active group's committed offsets of the moving partitions;
//! 4. write v+2: the target slot owns them, those offsets as handoff offsets;
//! 5. wait until every moving partition runs on a live instance of the
//!    target slot that applied v+2 (the agent started it at
//!    `max(own committed, handoff)`).
//!
//! A timeout writes the previous owner back (rollback, by the same
//! procedure in the other direction after phase 4).
//!
//! Shared-group strategy ([`strategy::shared`]): both slots use one group;
//! the standby slot stays out of it until the switch, which makes it join
//! and then the active slot leave (draining and committing on revoke).
//!
//! [`recover`] rolls back what an interrupted driver left behind.
//!
//! One driver at a time ([`lease`]): a driver holds a lease on the handoff
//! record in the desired state while it runs, and every write it makes is
//! a compare-and-set on the version it last wrote or read.
//!
//! - [`plan`]: the pure part: which partitions move, the desired-state
//!   changes of each phase, the acknowledgement checks, and the phase
//!   machine ([`plan::Handoff`]); [`checks`]: what ends a phase's wait
//!   early (a stopped partition) or names who it waited for;
//! - [`bookkeeping`]: the keys the deployment keeps in the desired state's
//!   `deploy` map (previous slot, canary, strategy, handoff in progress);
//! - [`driver`]: the [`Driver`] of one application, over a control store,
//!   the status topic and the groups' committed offsets ([`kafka`]);
//!   [`strategy`]: what it runs, a handoff between separate groups
//!   ([`strategy::separate`]) or a switch of a shared group
//!   ([`strategy::shared`]), each ending in an [`Outcome`] ([`outcome`]);
//! - [`command`]: what each `deploy` command decides (the strategy chosen
//!   at `init`, refusals, the canary's watch-then-abort), with the typed
//!   [`DeployError`] ([`error`]); [`view`]: the per-slot status.

pub mod bookkeeping;
pub mod checks;
pub mod command;
pub mod driver;
pub mod error;
pub mod kafka;
pub mod lease;
pub mod outcome;
pub mod plan;
pub mod recover;
pub mod strategy;
pub mod view;

pub use command::{CanaryWatch, Initialised, Strategy};
pub use driver::Driver;
pub use error::DeployError;
pub use outcome::Outcome;
pub use plan::{Handoff, Move};
pub use strategy::shared;
pub use strategy::shared::SharedMove;
pub use view::Status;
