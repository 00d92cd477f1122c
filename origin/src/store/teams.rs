//! The tenant's teams, their members and their projects.

use sqlx::Row as _;
use tessera_core::model::UserId;

use super::{StoreResult, TenantTx};

/// A team the user belongs to, with the user's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Team id.
    pub team_id: String,
    /// Team name.
    pub name: String,
    /// The user's role (`owner`, `admin`, `member`).
    pub role: String,
}

/// A project of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Project id.
    pub id: String,
    /// Its team.
    pub team_id: String,
    /// Name.
    pub name: String,
}

/// The teams and projects of the unit's tenant.
pub struct Teams<'a>(pub(super) &'a mut TenantTx);

impl Teams<'_> {
    /// Creates a team with `owner` as its owner.
    pub async fn create(
        &mut self,
        id: &str,
        name: &str,
        owner: &UserId,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("INSERT INTO {p}teams (id, name, created_at) VALUES ($1, $2, $3)");
        sqlx::query(&sql)
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(self.0.conn())
            .await?;
        let sql = self.0.sql(
            "INSERT INTO {p}team_members (team_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(owner.to_string())
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// Creates a project in a team.
    pub async fn create_project(
        &mut self,
        id: &str,
        team: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sql = self
            .0
            .sql("INSERT INTO {p}projects (id, team_id, name, created_at) VALUES ($1, $2, $3, $4)");
        sqlx::query(&sql)
            .bind(id)
            .bind(team)
            .bind(name)
            .bind(now)
            .execute(self.0.conn())
            .await?;
        Ok(())
    }

    /// The user's teams, oldest first.
    pub async fn of_user(&mut self, user: &UserId) -> StoreResult<Vec<Membership>> {
        let sql = self.0.sql(
            "SELECT t.id, t.name, m.role FROM {p}team_members m JOIN {p}teams t ON t.id = m.team_id \
             WHERE m.user_id = $1 ORDER BY t.created_at, t.id",
        );
        let rows = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_all(self.0.conn())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Membership {
                    team_id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    role: row.try_get("role")?,
                })
            })
            .collect()
    }

    /// The projects of the user's teams, oldest first.
    pub async fn projects_of_user(&mut self, user: &UserId) -> StoreResult<Vec<Project>> {
        let sql = self.0.sql(
            "SELECT p.id, p.team_id, p.name FROM {p}projects p \
             JOIN {p}team_members m ON m.team_id = p.team_id \
             WHERE m.user_id = $1 ORDER BY p.created_at, p.id",
        );
        let rows = sqlx::query(&sql)
            .bind(user.to_string())
            .fetch_all(self.0.conn())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Project {
                    id: row.try_get("id")?,
                    team_id: row.try_get("team_id")?,
                    name: row.try_get("name")?,
                })
            })
            .collect()
    }
}
