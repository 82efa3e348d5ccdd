/*
 * perm.c - roles, permissions and the check every endpoint makes.
 *
 * The matrix (also in docs/security.md, and tested cell by cell):
 *
 *                   owner admin analyst marketer viewer
 *   apps:read         x     x      x        x       x
 *   apps:write        x     x
 *   keys:manage       x     x
 *   users:manage      x     x
 *   reports:read      x     x      x        x       x
 *   export:raw        x     x      x
 *   costs:write       x     x               x
 *   settings:write    x     x               x
 *   privacy:execute   x     x
 *   audit:read        x     x
 *   org:manage        x
 *
 * An admin may not create, promote or change owners (umg_role_may_grant).
 */
#include "umg_auth.h"

static const char *const perm_names[UMG_PERM_COUNT] = {
    "apps:read",      "apps:write",      "keys:manage", "users:manage", "reports:read", "export:raw",    "costs:write",
    "settings:write", "privacy:execute", "audit:read",  "org:manage",   "events:write", "touches:write",
};

static const char *const role_names[] = {"", "owner", "admin", "analyst", "marketer", "viewer"};

const char *umg_perm_name(uint32_t perm)
{
    for (int i = 0; i < UMG_PERM_COUNT; i++) {
        if (perm == 1u << i) {
            return perm_names[i];
        }
    }
    return NULL;
}

uint32_t umg_perm_parse(const char *name, size_t len)
{
    for (int i = 0; i < UMG_PERM_COUNT; i++) {
        if (strlen(perm_names[i]) == len && memcmp(perm_names[i], name, len) == 0) {
            return 1u << i;
        }
    }
    return 0;
}

uint32_t umg_role_perms(umg_role_t role)
{
    const uint32_t read = UMG_PERM_APPS_READ | UMG_PERM_REPORTS_READ;
    switch (role) {
    case UMG_ROLE_OWNER: return UMG_PERM_USER_MASK;
    case UMG_ROLE_ADMIN: return UMG_PERM_USER_MASK & ~UMG_PERM_ORG_MANAGE;
    case UMG_ROLE_ANALYST: return read | UMG_PERM_EXPORT_RAW;
    case UMG_ROLE_MARKETER: return read | UMG_PERM_COSTS_WRITE | UMG_PERM_SETTINGS_WRITE;
    case UMG_ROLE_VIEWER: return read;
    default: return 0;
    }
}

const char *umg_role_name(umg_role_t role)
{
    return (unsigned)role < UMG_ARRAY_SIZE(role_names) ? role_names[role] : "";
}

umg_role_t umg_role_parse(const char *name, size_t len)
{
    for (size_t i = 1; i < UMG_ARRAY_SIZE(role_names); i++) {
        if (strlen(role_names[i]) == len && memcmp(role_names[i], name, len) == 0) {
            return (umg_role_t)i;
        }
    }
    return UMG_ROLE_NONE;
}

int umg_role_may_grant(umg_role_t granter, umg_role_t role)
{
    if (granter == UMG_ROLE_OWNER) {
        return role != UMG_ROLE_NONE;
    }
    return granter == UMG_ROLE_ADMIN && role != UMG_ROLE_OWNER && role != UMG_ROLE_NONE;
}

int umg_perms_json(uint32_t mask, umg_buf_t *out)
{
    int rc = umg_buf_putc(out, '[');
    int first = 1;
    for (int i = 0; i < UMG_PERM_COUNT && rc == UMG_OK; i++) {
        if (mask & (1u << i)) {
            rc = umg_buf_printf(out, "%s\"%s\"", first ? "" : ",", perm_names[i]);
            first = 0;
        }
    }
    return rc ? rc : umg_buf_putc(out, ']');
}

int umg_principal_can(const umg_principal_t *p, uint32_t perm, const umg_app_t *app)
{
    if (p == NULL || p->kind == UMG_PRINCIPAL_NONE || (p->perms & perm) != perm || perm == 0) {
        return 0;
    }
    if (app == NULL) {
        return 1; /* an organization-level check: p->org is the organization */
    }
    if (app->org != p->org) {
        return 0;
    }
    if (p->kind == UMG_PRINCIPAL_APP_SECRET || p->kind == UMG_PRINCIPAL_APP_KEY) {
        return p->app.id == app->id;
    }
    if (p->all_apps) {
        return 1;
    }
    for (uint32_t i = 0; i < p->napps; i++) {
        if (p->apps[i] == app->id) {
            return 1;
        }
    }
    return 0;
}
