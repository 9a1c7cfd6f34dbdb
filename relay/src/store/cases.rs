//! Readmission cases: each [`Case`] under its id in `cases`, written in the
//! same transaction as the message or clock tick that changes it.

use kurir_proto::CaseId;
use kurir_proto::audit::Entry;

use super::keys::Row;
use super::records::encode;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError};
use crate::core::deadline::Case;

impl Store {
    /// Records a case after its clock moved.
    pub async fn put_case(&self, case: Case, audit: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Case(case), audit).await.map(drop)
    }

    /// A readmission case.
    pub fn case(&self, case_id: &CaseId) -> Result<Option<Case>, StoreError> {
        self.get(
            self.tree(TreeId::Cases)?,
            "cases",
            case_id.as_str().as_bytes(),
        )
    }

    /// Every readmission case.
    pub fn cases(&self) -> Result<Vec<Case>, StoreError> {
        self.scan(self.tree(TreeId::Cases)?, "cases", &[])
    }
}

impl Writer {
    /// [`Op::Case`]: the case as its clock left it.
    pub(super) fn put_case(
        &self,
        case: &Case,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let case_row = case_row(Some(case)).map_err(|r| self.corrupt("cases", r))?;
        if let Some((k, v)) = case_row {
            pending.put(TreeId::Cases, k, v);
        }
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}

/// The `cases` row of a case, if there is one.
pub(super) fn case_row(case: Option<&Case>) -> Result<Option<Row>, String> {
    case.map(|c| Ok((c.case_id.as_str().as_bytes().to_vec(), encode(c)?)))
        .transpose()
}
