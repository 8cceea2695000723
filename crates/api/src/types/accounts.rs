//! Organisations, users and API tokens as GraphQL objects.

use super::*;

/// What an organisation is; it decides where its applications go (a unit in a city
/// through its city bureau, everyone else straight to the province).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "OrgKind")]
pub enum OrgKindGql {
    /// 省局: the provincial bureau.
    Province,
    /// 省级单位: a provincial organisation (省直单位, 省级协会, 社会团体, 事业单位).
    Provincial,
    /// 知识产权保护中心 or 专利代办处.
    ProtectionCentre,
    /// 地市市场监管局: a city bureau.
    City,
    /// A unit in a city.
    Unit,
    /// 第三方机构: a third-party institution.
    ThirdParty,
}

impl From<grantflow_store::OrgKind> for OrgKindGql {
    fn from(k: grantflow_store::OrgKind) -> Self {
        use grantflow_store::OrgKind as K;
        match k {
            K::Province => Self::Province,
            K::Provincial => Self::Provincial,
            K::ProtectionCentre => Self::ProtectionCentre,
            K::City => Self::City,
            K::Unit => Self::Unit,
            K::ThirdParty => Self::ThirdParty,
        }
    }
}

impl From<OrgKindGql> for grantflow_store::OrgKind {
    fn from(k: OrgKindGql) -> Self {
        match k {
            OrgKindGql::Province => Self::Province,
            OrgKindGql::Provincial => Self::Provincial,
            OrgKindGql::ProtectionCentre => Self::ProtectionCentre,
            OrgKindGql::City => Self::City,
            OrgKindGql::Unit => Self::Unit,
            OrgKindGql::ThirdParty => Self::ThirdParty,
        }
    }
}

pub struct OrganisationGql(pub Organisation);

#[Object(name = "Organisation")]
impl OrganisationGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> OrgKindGql {
        self.0.kind.into()
    }
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Self>> {
        let Some(parent) = self.0.parent_id else {
            return Ok(None);
        };
        let org = rc(ctx)
            .loader
            .load_one(OrgId(parent))
            .await
            .map_err(|e| internal(ctx, e))?;
        Ok(org.map(OrganisationGql))
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role")]
pub enum RoleGql {
    Admin,
    Manager,
    City,
    Applicant,
    Expert,
    Auditor,
    /// 第三方评价机构的评价人员
    ThirdPartyEvaluator,
}

impl From<Role> for RoleGql {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => Self::Admin,
            Role::Manager => Self::Manager,
            Role::City => Self::City,
            Role::Applicant => Self::Applicant,
            Role::Expert => Self::Expert,
            Role::Auditor => Self::Auditor,
            Role::ThirdPartyEvaluator => Self::ThirdPartyEvaluator,
        }
    }
}

impl From<RoleGql> for Role {
    fn from(r: RoleGql) -> Self {
        match r {
            RoleGql::Admin => Self::Admin,
            RoleGql::Manager => Self::Manager,
            RoleGql::City => Self::City,
            RoleGql::Applicant => Self::Applicant,
            RoleGql::Expert => Self::Expert,
            RoleGql::Auditor => Self::Auditor,
            RoleGql::ThirdPartyEvaluator => Self::ThirdPartyEvaluator,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "NotifyPref")]
pub enum NotifyPrefGql {
    Immediate,
    DigestOnly,
    None,
}

impl From<grantflow_store::NotifyPref> for NotifyPrefGql {
    fn from(p: grantflow_store::NotifyPref) -> Self {
        match p {
            grantflow_store::NotifyPref::Immediate => Self::Immediate,
            grantflow_store::NotifyPref::DigestOnly => Self::DigestOnly,
            grantflow_store::NotifyPref::None => Self::None,
        }
    }
}

impl From<NotifyPrefGql> for grantflow_store::NotifyPref {
    fn from(p: NotifyPrefGql) -> Self {
        match p {
            NotifyPrefGql::Immediate => Self::Immediate,
            NotifyPrefGql::DigestOnly => Self::DigestOnly,
            NotifyPrefGql::None => Self::None,
        }
    }
}

pub struct UserGql(pub User);

#[Object(name = "User")]
impl UserGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn username(&self) -> &str {
        &self.0.username
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// Visible to the user, admins and managers.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let v = viewer(ctx)?;
        let allowed =
            v.user.id == self.0.id || v.has_role(Role::Admin) || v.has_role(Role::Manager);
        Ok(allowed.then_some(self.0.email.as_str()))
    }
    async fn roles(&self) -> Vec<RoleGql> {
        self.0.roles.iter().map(|r| (*r).into()).collect()
    }
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<OrganisationGql>> {
        let Some(org) = self.0.org_id else {
            return Ok(None);
        };
        let org = rc(ctx)
            .loader
            .load_one(OrgId(org))
            .await
            .map_err(|e| internal(ctx, e))?;
        Ok(org.map(OrganisationGql))
    }
    async fn lang(&self) -> &str {
        self.0.lang.tag()
    }
    async fn notify_pref(&self) -> NotifyPrefGql {
        self.0.notify_pref.into()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
}

/// A credential of the viewer (never the secret itself).
pub struct TokenGql(pub TokenRecord);

#[Object(name = "ApiToken")]
impl TokenGql {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn scopes(&self) -> &[String] {
        &self.0.scopes
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}
