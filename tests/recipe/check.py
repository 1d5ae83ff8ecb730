#!/usr/bin/env python3
"""Checks of the deployment files that the schema checkers miss (tests/cvat_recipe.rs).

check-jsonschema (compose spec) and kubernetes-validate both accept bad enum values, so:

  check.py enums FILE...         every `propagation` (compose bind), `mountPropagation` and
                                 hostPath `type` value is one the runtime knows; exit 1 naming
                                 file, path and value otherwise.
  check.py helm-pod VALUES OUT   write a Pod that carries CVAT's backend additionalVolumes and
                                 additionalVolumeMounts from the Helm VALUES file, for
                                 kubernetes-validate (values files are not manifests).
"""
import sys

import yaml

PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
MOUNT_PROPAGATION = {"None", "HostToContainer", "Bidirectional"}
HOST_PATH_TYPES = {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice"}


def walk(node, path, bad):
    if isinstance(node, dict):
        for k, v in node.items():
            where = f"{path}.{k}"
            if k == "propagation" and isinstance(v, str) and v not in PROPAGATION:
                bad.append(f"{where}: {v!r} is not one of {sorted(PROPAGATION)}")
            if k == "mountPropagation" and v not in MOUNT_PROPAGATION:
                bad.append(f"{where}: {v!r} is not one of {sorted(MOUNT_PROPAGATION)}")
            if k == "hostPath" and isinstance(v, dict) and "type" in v \
                    and v["type"] not in HOST_PATH_TYPES:
                bad.append(f"{where}.type: {v['type']!r} is not one of "
                           f"{sorted(HOST_PATH_TYPES)}")
            walk(v, where, bad)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{path}[{i}]", bad)


def enums(files):
    bad = []
    for f in files:
        with open(f) as fh:
            for n, doc in enumerate(yaml.safe_load_all(fh)):
                found = []
                walk(doc, "", found)
                bad.extend(f"{f} (document {n + 1}){b}" for b in found)
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


def helm_pod(values, out):
    with open(values) as fh:
        v = yaml.safe_load(fh)
    backend = v["cvat"]["backend"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "cvat-backend-share-check"},
        "spec": {
            "containers": [{
                "name": "cvat-backend",
                "image": "cvat/server",
                "volumeMounts": backend["additionalVolumeMounts"],
            }],
            "volumes": backend["additionalVolumes"],
        },
    }
    with open(out, "w") as fh:
        yaml.safe_dump(pod, fh)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "enums":
        sys.exit(enums(sys.argv[2:]))
    if len(sys.argv) == 4 and sys.argv[1] == "helm-pod":
        sys.exit(helm_pod(sys.argv[2], sys.argv[3]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
