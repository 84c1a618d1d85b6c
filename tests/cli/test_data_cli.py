"""``fedgossip data list|download``."""

import json


def test_list_names_every_builtin_source_with_params(run_cli):
    result = run_cli("data", "list", "--json")
    rows = {row["name"]: row for row in json.loads(result.output)}
    known = {"digits", "synthetic", "mnist", "fashion-mnist", "cifar10", "npz", "hdf5", "csv", "python"}
    assert known <= set(rows)
    assert [p["name"] for p in rows["mnist"]["params"]] == ["path"]
    assert rows["mnist"]["params"][0]["required"] is True


def test_list_table_fits_80_columns(run_cli):
    result = run_cli("data", "list")
    assert result.exit_code == 0 and "synthetic" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_download_checks_the_sha256_given_on_the_command_line(run_cli, server, tmp_path):
    import gzip
    import hashlib

    site, url, _ = server
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]
    names.append("t10k-labels-idx1-ubyte.gz")
    sums = []
    for name in names:
        payload = gzip.compress(name.encode())
        (site / name).write_bytes(payload)
        sums += ["--checksums", f"{name}={hashlib.sha256(payload).hexdigest()}"]
    good = run_cli("data", "download", "mnist", "--dir", tmp_path / "mnist", "--url", url, *sums)
    assert good.exit_code == 0, good.output + good.stderr
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(names)

    sums[1] = f"{names[0]}={'0' * 64}"
    bad = run_cli("data", "download", "mnist", "--dir", tmp_path / "other", "--url", url, *sums)
    assert bad.exit_code == 1 and "error: " in bad.stderr and "0" * 64 in bad.stderr
    assert not (tmp_path / "other" / names[0]).exists()


def test_download_refuses_a_malformed_checksum_option(run_cli, tmp_path):
    result = run_cli("data", "download", "mnist", "--dir", tmp_path, "--checksums", "no-equals-sign")
    assert result.exit_code == 2 and "NAME=SHA256" in result.stderr
