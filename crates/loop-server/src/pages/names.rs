//! The names of a tenant's devices and vaults, for pages that show what an ID stands for and
//! offer them in forms.

use loop_api::Vault;

use crate::db::dashboard::DeviceRow;
use crate::db::page::Page;
use crate::domain::TenantScope;
use crate::error::ApiResult;
use crate::state::AppState;

/// Vaults a page names at most.
const VAULTS: u32 = 500;

pub struct Names {
    pub devices: Vec<DeviceRow>,
    pub vaults: Vec<Vault>,
}

impl Names {
    pub async fn of(state: &AppState, tenant_id: &str) -> ApiResult<Names> {
        let pool = &state.db.pool;
        let scope = TenantScope::One(tenant_id.to_string());
        Ok(Names {
            devices: crate::db::dashboard::devices_of(pool, tenant_id).await?,
            vaults: crate::db::vaults::vaults_in(pool, &scope, Some(&Page::first(VAULTS)))
                .await?
                .items,
        })
    }

    /// The name of device `id`, or a dash.
    pub fn device(&self, id: &str) -> &str {
        self.devices
            .iter()
            .find(|d| d.device.id == id)
            .map_or("—", |d| d.device.name.as_str())
    }

    /// The name of vault `id`, or a dash.
    pub fn vault(&self, id: &str) -> &str {
        self.vaults
            .iter()
            .find(|v| v.id == id)
            .map_or("—", |v| v.name.as_str())
    }
}
