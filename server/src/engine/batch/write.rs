//! Writing a batch: its rows, with multi-row statements, once every command is applied.

use time::OffsetDateTime;

use signoff_app::{Identity, RequestId};

use super::Batch;
use crate::Result;
use crate::store::{DecisionRecord, NewRow, StoredRequest, WriteTx};

impl Batch<'_> {
    /// Writes the batch: new requests in their final state, changes to stored ones,
    /// decisions, the audit events and the new head.
    pub(super) async fn write(&self, tx: &mut WriteTx) -> Result<()> {
        let created: Vec<NewRow<'_>> = self
            .created
            .iter()
            .filter_map(|(id, key)| {
                self.requests.get(id).map(|loaded| NewRow {
                    request: &loaded.case.request,
                    idempotency_key: key.as_deref(),
                })
            })
            .collect();
        if !created.is_empty() {
            tx.insert_requests(&created).await?;
        }
        let changed: Vec<&StoredRequest> = self
            .requests
            .values()
            .filter(|loaded| loaded.changed && !loaded.new)
            .map(|loaded| &loaded.case.request)
            .collect();
        if !changed.is_empty() {
            tx.update_requests(&changed).await?;
        }
        if !self.decisions.is_empty() {
            let decisions: Vec<&DecisionRecord> = self.decisions.iter().collect();
            tx.insert_decisions(&decisions).await?;
        }
        for grant in &self.new_grants {
            tx.insert_grant(grant).await?;
        }
        let used: Vec<&str> = self
            .grant_uses
            .iter()
            .flat_map(|(id, uses)| std::iter::repeat_n(id.as_str(), *uses as usize))
            .collect();
        if !used.is_empty() {
            tx.use_grants(&used).await?;
        }
        if !self.followups.is_empty() {
            let opened: Vec<(RequestId, &Identity, OffsetDateTime)> =
                self.followups.iter().map(|(id, who, at)| (*id, who, *at)).collect();
            tx.insert_followups(&opened).await?;
        }
        if !self.chain.rows.is_empty() {
            tx.insert_audit(&self.chain.rows).await?;
            tx.insert_tree(&self.chain.tree).await?;
            let (seq, hash, frontier) = self.chain.head();
            tx.set_head(seq, hash, &frontier).await?;
        }
        if !self.chain.checkpoints.is_empty() {
            tx.insert_checkpoints(&self.chain.checkpoints).await?;
        }
        Ok(())
    }
}
