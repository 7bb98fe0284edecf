"""The catalogue's part of the configuration reference: how it changes while Palaute runs."""

# ruff: noqa: E501 - Markdown table rows are one line each

from __future__ import annotations

#: Appended to docs/configuration.md by ``palaute config reference``.
CATALOGUE_REFERENCE = """
## The touchpoint catalogue while Palaute runs

The catalogue is `[defaults]`, every `[touchpoints.<touchpoint id>]` and
`[alerts] csat_targets`: which touchpoints are surveyed, how, in which words,
and the KPI and CSAT targets their scores are judged by. It changes without a
restart: every change is a versioned record on the compacted topic
`palaute.catalogue.v1`, and every worker and web process applies it as soon as
it is written (a fraction of a second; measured 0.12 s from the API's answer to
the worker running on it). Each process says the version it runs on at
`/healthz`, the worker's and the web service's alike:
`{"status": "ok", "catalogue_version": 7}`.

**The file is the seed.** The first worker to start on an empty catalogue topic
writes the configuration file's catalogue to it as version 1. From then on the
topic is the catalogue: editing the file's touchpoints changes nothing until the
file is imported (`palaute catalogue import`). A process started before the
topic has a version runs on its file's catalogue and reports version 0.

**Versions.** A change's version is its offset on the topic's one partition plus
one, so every process numbers it alike and runs the same catalogue once it has
read that far. A worker reads the whole topic before its stages start, so no
contact is decided on an older catalogue than the topic holds. Each record has
a key of its own, so compaction never removes one: the topic is the catalogue's
history. Back it up as you back up configuration.

**Validation.** Every change is checked before it is written, with the models
and rules of `palaute config check` (every field, `[defaults]` filling what an
entry leaves out, send windows against quiet hours). A change that does not
pass is refused, with every problem named by its TOML path, and nothing is
written.

**Conflicts.** A change says which version of the touchpoint it was based on.
If someone else changed the touchpoint in between, the change is refused (HTTP
409): no one overwrites a change they have not seen. Every process refuses the
same changes, so all run the same catalogue.

**Retiring** takes a touchpoint out of the catalogue; its history stays, and a
roll back brings it back. Contacts for a retired touchpoint are then surveyed
with `[defaults]` and reported, as for any touchpoint missing from the
catalogue. To stop surveying a touchpoint, set `sensitive = true` on it instead.

### Configuration as code: `palaute catalogue export` and `import`

```
palaute catalogue export --config palaute.toml --output catalogue.toml
palaute catalogue import --config palaute.toml --dry-run catalogue.toml
palaute catalogue import --config palaute.toml --by "Aino Virtanen" catalogue.toml
```

`export` writes the catalogue in force as TOML, with the configuration file's
paths: `[defaults]`, the touchpoints by id, then `[alerts] csat_targets`; each
entry with only the fields it sets itself, durations in the short form (`15m`,
`3d`). `import` makes a file the next version: every touchpoint as in the file,
touchpoints missing from it retired. `--dry-run` prints the difference as a
unified diff of the two exports and writes nothing; so does an import with no
difference. Exporting after importing an exported file gives back the same
bytes: `examples/catalogue.toml` is the example configuration's catalogue as
`export` writes it. Exit status: 0 done (or nothing to do), 1 the file does not
validate (every problem is printed), 3 Kafka cannot be reached, 4 the import was
refused because the catalogue changed after the comparison (run it again).

### The HTTP API: `/v1/catalogue`

JSON in and out, on the web service, described in its OpenAPI document
(`GET /openapi.json`). Requests carry an operator's token
(`Authorization: Bearer <token>`, one of `[web] ops_token_sha256`); a change made
with a token is recorded as made by `operator token <first 8 hex digits of the
token's SHA-256>`. A signed-in person's session works too (docs/administration.md):
any role reads, only an admin changes, and the change records their name (`by`)
and subject (`by_subject`). Admins also have the same operations, with previews,
on the `/admin` page. A body is `application/json` (415 otherwise).

| request | does |
|---|---|
| `GET /v1/catalogue/touchpoints` | every touchpoint the catalogue has had, in force or retired, with its version, name, KPI and CSAT targets; and the catalogue version |
| `GET /v1/catalogue/touchpoints/{id}` | one touchpoint: `touchpoint` (its fields as written), `effective` (as the stages run it, `[defaults]` filled in), `csat_target`, `version`, `retired` |
| `POST /v1/catalogue/touchpoints` | create: `{"id": "library-desk", "touchpoint": {"name": "Kirjasto", "kpi_target": 4.2}, "csat_target": 0.8}`; 201 |
| `PATCH /v1/catalogue/touchpoints/{id}` | edit: `{"touchpoint": {"kpi_target": 4.5, "send_delay": "5m"}}` changes those fields and keeps the rest; `null` removes a field, which then comes from `[defaults]`; `"csat_target"` sets or (null) removes the CSAT target |
| `POST /v1/catalogue/touchpoints/{id}/retire` | retire (body optional) |
| `GET /v1/catalogue/touchpoints/{id}/history` | every change, oldest first: `version`, `at`, `by`, `action` (seed, import, create, edit, retire, rollback), `comment`, and `changes` as `{"field", "before", "after"}` |
| `POST /v1/catalogue/touchpoints/{id}/rollback` | `{"version": 12}`: make the touchpoint again what it was at version 12 (retired then: retired now) |

Every change may carry `"comment"` (shown in the history) and
`"expected_version"` (the touchpoint's version the change is based on; by
default the one this process has read). A change is answered once this web
process has read it back from the topic, with the touchpoint as it now is and
its new `version`, and `warnings`: each of its SMS, in any language, first
message or reminder, that would take more than one segment, go out in UCS-2 or
leave out the organisation or the service, in the words of `palaute config
check` (an empty list when every SMS fits). Such a change is saved all the
same, as config check and `palaute catalogue import` only warn of it: a second
segment costs more but still reaches the citizen. Refusals: 400 a body that is
not an object of these fields, 401 no operator token, 404 no such touchpoint or version, 409 a conflict (or
creating a touchpoint that exists), 422 the catalogue would not validate (every
problem in `errors`, by TOML path, such as
`touchpoints.library-desk.kpi_target`), 503 the catalogue topic cannot be
written or read back (retry after `Retry-After`).

```
curl -X PATCH https://palaute.example.fi/v1/catalogue/touchpoints/phone-service-helsinki \\
  -H "Authorization: Bearer $PALAUTE_OPERATOR_TOKEN" -H "Content-Type: application/json" \\
  -d '{"touchpoint": {"kpi_target": 4.4}, "comment": "Target for 2027"}'
```

The operations are plain functions in `connectors/web/catalogue_api.py`, each
taking who acts, for any page that edits the catalogue.
"""
