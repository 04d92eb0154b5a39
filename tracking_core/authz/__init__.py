"""Authorization: who may do what to which experiment or registered model.

- `permissions`: the levels (READ < USE < EDIT < MANAGE, DENY) and how grants combine;
- `caller`: the caller's admin flag and grants, loaded once per request (briefly cached);
- `routes`: the one table mapping every endpoint handler to (resource, locator, permission);
- `guard`: the check run before every endpoint, and what follows a create or rename;
- `visibility`: what a caller may read, as a SQL condition for the search queries;
- `paths`: the same check for the routes outside the Endpoint table (artifact downloads);
- `audit`: one record per state-changing request, permission change and download.
"""
