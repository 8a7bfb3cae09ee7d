"""`mepr fetch-models`: put the hub models a config names into the model store.

Run it where a model hub can be reached (a login node); the jobs then load the models from the
store with hub access off (`mepr.embed.store`). The workflow runs it once per model (rule
`fetch_model`, a local rule; `snakemake fetch_models` for all of them).
"""

from __future__ import annotations

import argparse


def _fetch_models(a: argparse.Namespace) -> None:
    from mepr.embed import fetch as mf
    from mepr.embed import store as ms

    entries = [ms.Entry.from_dict(e) for e in a.entry]
    store = a.store
    if a.config:
        from mepr.config import load_workflow_config

        cfg = load_workflow_config(a.config)
        store = store or cfg["models"]["store"]
        for found in ms.config_entries(cfg).values():
            entries += found
    elif not entries:
        raise SystemExit("mepr fetch-models: error: nothing to fetch: give --config or --entry")
    unique = list({e.key: e for e in entries}.values())
    if a.receipt and len(unique) != 1:
        raise SystemExit("mepr fetch-models: error: --receipt goes with exactly one --entry")
    root = ms.model_store(store)
    if not unique:
        print("no hub models configured: nothing to fetch (demo:, package: and local need none)")
    for entry in unique:
        try:
            manifest, fetched = mf.fetch(entry, root, refresh=a.refresh)
        except Exception as e:
            raise SystemExit(
                f"mepr fetch-models: error: cannot fetch {entry.describe()} into {root}: {e}"
            ) from e
        size = sum(f["size"] for f in manifest["files"].values())
        print(
            f"{'fetched' if fetched else 'present'} {entry.key}: {entry.describe()}, revision "
            f"{manifest['revision']['resolved']}, {len(manifest['files'])} files, "
            f"{size / 1e6:.1f} MB, in {root}"
        )
        if a.receipt:
            mf.write_receipt(entry, root, manifest, a.receipt)


def register(sub) -> None:
    p = sub.add_parser(
        "fetch-models",
        help="fetch the configured hub models into the model store (needs hub access)",
    )
    p.add_argument(
        "--store",
        help="the model store (default: the config's models.store, else $MEPR_MODEL_STORE, "
        "else resources/models)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="YAML",
        help="config file(s), merged in order over config.yaml like snakemake --configfile: "
        "fetch every hub model they name",
    )
    p.add_argument(
        "--entry",
        action="append",
        default=[],
        metavar="JSON",
        help="one store entry as JSON (what rule fetch_model passes)",
    )
    p.add_argument("--receipt", help="with one --entry: also write the workflow's receipt here")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="fetch again where the store has the model (re-resolves branches such as main)",
    )
    p.set_defaults(func=_fetch_models)
