"""Reads secrets from a Keeper server with the official Python SDK and prints what it read.

Used by libs/test-util/tests/it/keeper.rs to prove the fake Keeper server wire-compatible:
the SDK (PyPI keeper-secrets-manager-core 17.3.0) binds a one-time token, or reuses a bound
config, and reads records, fields, notation, files and folders.

Usage: ksm_read.py CONFIG_FILE PLAN_FILE

CONFIG_FILE is the SDK's JSON config (hostname, clientKey or the bound keys, serverPublicKey,
serverPublicKeyId); the SDK updates it in place, as in production. TLS is verified against
the CA named by REQUESTS_CA_BUNDLE. PLAN_FILE is JSON naming what to read:

  {"record_uid": UID,                                   get_secrets([UID])
   "fields": [{"record": UID, "kind": "standard"|"custom", "key": TYPE_OR_LABEL}],
   "notation": [NOTATION, ...],                         get_notation_results
   "notation_single": [NOTATION, ...],                  get_notation
   "files": [{"record": UID, "title": TITLE}],          file content, base64
   "folders": true}                                     get_folders

It prints one JSON object; the SDK's own log lines go to stderr.
"""

import base64
import json
import sys

try:
    from keeper_secrets_manager_core import SecretsManager
    from keeper_secrets_manager_core.storage import FileKeyValueStorage
except ImportError as error:
    sys.stderr.write(
        "the official Keeper SDK is not importable (%s): "
        "pip install keeper-secrets-manager-core==17.3.0\n" % error
    )
    sys.exit(3)


def describe(record):
    """The parts of a record the test compares with what it stored."""
    return {
        "uid": record.uid,
        "title": record.title,
        "type": record.type,
        "notes": record.dict.get("notes"),
        "password": record.password,
        "revision": record.revision,
        "folder_uid": record.folder_uid or None,
        "inner_folder_uid": record.inner_folder_uid or None,
        "fields": record.dict.get("fields", []),
        "custom": record.dict.get("custom", []),
        "files": sorted(
            (
                {
                    "uid": f.f.get("fileUid"),
                    "name": f.name,
                    "title": f.title,
                    "type": f.type,
                    "size": f.size,
                }
                for f in record.files
            ),
            key=lambda f: f["uid"],
        ),
    }


def main():
    config_path, plan_path = sys.argv[1], sys.argv[2]
    with open(plan_path) as fh:
        plan = json.load(fh)

    sm = SecretsManager(config=FileKeyValueStorage(config_path), log_level="INFO")

    out = {}
    response = sm.get_secrets_with_options(full_response=True)
    out["app"] = {"title": response.appData.title, "type": response.appData.app_type}
    out["bad_records"] = len(response.bad_records)
    out["bad_folders"] = len(response.bad_folders)
    records = sorted(response.records, key=lambda r: r.uid)
    out["records"] = [describe(r) for r in records]
    out["shared_folders"] = sorted(
        ({"uid": f.uid, "name": f.name, "records": sorted(r.uid for r in f.records)}
         for f in response.folders),
        key=lambda f: f["uid"],
    )

    if plan.get("record_uid"):
        out["record"] = [describe(r) for r in sm.get_secrets([plan["record_uid"]])]

    by_uid = {r.uid: r for r in records}
    out["fields"] = []
    for query in plan.get("fields", []):
        record = by_uid[query["record"]]
        if query["kind"] == "custom":
            value = record.get_custom_field_value(query["key"])
        else:
            value = record.get_standard_field_value(query["key"])
        out["fields"].append(value)

    out["notation"] = {n: sm.get_notation_results(n) for n in plan.get("notation", [])}
    out["notation_single"] = {n: sm.get_notation(n) for n in plan.get("notation_single", [])}

    out["files"] = {}
    for query in plan.get("files", []):
        record = by_uid[query["record"]]
        content = record.find_file_by_title(query["title"]).get_file_data()
        out["files"][query["title"]] = base64.b64encode(content).decode()

    if plan.get("folders"):
        out["folders"] = sorted(
            ({"uid": f.folder_uid, "parent": f.parent_uid or None, "name": f.name}
             for f in sm.get_folders()),
            key=lambda f: f["uid"],
        )

    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
