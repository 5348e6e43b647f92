"""The floor: the least work this design can do for a fleet rotation, in plain paramiko +
cryptography with one thread per host. It is the lower bound origin-agent is measured against.

Per host: one SSH connection; an EC P-256 key and a CSR made here and signed here with the lab
CA's key; then ONE remote command (``sh -s``, the script and the PEM files on its stdin, never on
a command line) that writes ``/etc/ssl/origin-agent/NAME/VERSION/{privkey,cert,chain,
fullchain}.pem`` (the key 0600 from the first byte), writes the site file pointing at
``current``, swaps the ``current`` symlink, tests the config (restoring the previous link if
the test fails), reloads gracefully and prunes old versions; then a TLS handshake (SNI) until
the new certificate is served. Same file layout and site text as origin-agent's ``tls_origin``.

    python -m bench.floor INVENTORY   # the lab's inventory.yml; prints one JSON line per host
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import socket
import ssl
import sys
import threading
import time
from typing import Any

import paramiko
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = "/etc/ssl/origin-agent"
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

NGINX_SITE = """\
# Managed by origin-agent: site {name} (intermediate profile). Edits here are overwritten.
# The host-wide TLS policy (protocols, ciphers, groups) is in conf.d/origin-agent-tls.conf.

server {{
    listen {addr}:80;
    server_name {name};

    # ACME http-01: always served from the webroot, never redirected.
    location ^~ /.well-known/acme-challenge/ {{
        root /var/www/acme;
        default_type text/plain;
        try_files $uri =404;
    }}

    root /var/www/html;
    location / {{
        try_files $uri $uri/ =404;
    }}
}}

server {{
    listen {addr}:443 ssl http2;
    server_name {name};
    root /var/www/html;

    ssl_certificate {root}/{name}/current/fullchain.pem;
    ssl_certificate_key {root}/{name}/current/privkey.pem;

    # Effective when this server is the default of its address; see the policy file.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {ciphers};
    ssl_ecdh_curve X25519:prime256v1:secp384r1;

    location / {{
        try_files $uri $uri/ =404;
    }}
}}
"""

APACHE_SITE = """\
# Managed by origin-agent: site {name} (intermediate profile). Edits here are overwritten.
# Needs: a2enmod ssl headers; Listen lines are in ports.conf.

<VirtualHost {addr}:80>
    ServerName {name}
    DocumentRoot /var/www/html

    # ACME http-01: always served from the webroot, never redirected.
    Alias /.well-known/acme-challenge/ /var/www/acme/.well-known/acme-challenge/
    <Directory /var/www/acme/.well-known/acme-challenge/>
        Require all granted
        ForceType text/plain
    </Directory>
    <Directory /var/www/html>
        Require all granted
    </Directory>
</VirtualHost>

<VirtualHost {addr}:443>
    ServerName {name}
    DocumentRoot /var/www/html
    <Directory /var/www/html>
        Require all granted
    </Directory>

    SSLEngine on
    SSLCertificateFile {root}/{name}/current/fullchain.pem
    SSLCertificateKeyFile {root}/{name}/current/privkey.pem
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCipherSuite {ciphers}
    SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1
    SSLHonorCipherOrder off
</VirtualHost>
"""

SERVERS = {
    "nginx": dict(
        site=NGINX_SITE,
        avail="/etc/nginx/sites-available",
        enabled="/etc/nginx/sites-enabled",
        enable="",
        test="/usr/sbin/nginx -t",
        reload="/usr/sbin/nginx -s reload",
    ),
    "apache": dict(
        site=APACHE_SITE,
        avail="/etc/apache2/sites-available",
        enabled="/etc/apache2/sites-enabled",
        enable="[ -e /etc/apache2/mods-enabled/ssl.load ] || a2enmod -q ssl headers",
        test="/usr/sbin/apache2ctl configtest",
        reload="/usr/sbin/apache2ctl graceful",
    ),
}

SCRIPT = """\
set -u
R={root}/{name}; V={version}; T="$R/.floor-tmp-$V"
mkdir -p "$R" && rm -rf "$R"/.floor-tmp-* && mkdir -m 0700 "$T" || {{ echo FAIL mkdir; exit 1; }}
(umask 077; cat > "$T/privkey.pem") <<'@@KEY@@'
{key}@@KEY@@
cat > "$T/cert.pem" <<'@@CERT@@'
{cert}@@CERT@@
: > "$T/chain.pem"
cp "$T/cert.pem" "$T/fullchain.pem"
chmod 0644 "$T/cert.pem" "$T/chain.pem" "$T/fullchain.pem"; chmod 0755 "$T"
mv -T "$T" "$R/$V" || {{ echo FAIL stage; exit 1; }}
cat > {avail}/{name}.conf.floor-tmp <<'@@SITE@@'
{site}@@SITE@@
mv -f {avail}/{name}.conf.floor-tmp {avail}/{name}.conf
[ -L {enabled}/{name}.conf ] || ln -sfn {avail}/{name}.conf {enabled}/{name}.conf
{enable}
PREV=$(readlink "$R/current" || true)
ln -sfn "$V" "$R/current.floor-tmp" && mv -fT "$R/current.floor-tmp" "$R/current"
if ! {test} >/dev/null 2>"$R/.floor-test"; then
  [ -n "$PREV" ] && ln -sfn "$PREV" "$R/current.floor-tmp" &&
    mv -fT "$R/current.floor-tmp" "$R/current"
  echo "FAIL test $(tail -n 1 "$R/.floor-test")"; exit 1
fi
{reload} >/dev/null 2>&1 || {{ echo FAIL reload; exit 1; }}
ls -1 "$R" | grep -E '^[0-9]{{8}}T[0-9]{{6}}Z-' | sort -r | tail -n +4 | while read -r old; do
  [ "$old" = "$V" ] || [ "$old" = "$PREV" ] || rm -rf "$R/$old"; done
echo OK
"""


def load_inventory(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The lab inventory's all-vars and its hosts (name, address, server, names)."""
    with open(path) as fh:
        data = yaml.safe_load(fh)["all"]
    hosts = []
    for group, body in data.get("children", {}).items():
        for name, hv in (body.get("hosts") or {}).items():
            hosts.append(
                {
                    "name": name,
                    "address": hv["ansible_host"],
                    "server": group,
                    "listen": hv.get("listen_address", hv["ansible_host"]),
                    "names": list(hv["tls_names"]),
                }
            )
    return data["vars"], hosts


def served_fingerprint(address: str, sni: str, timeout: float = 5.0) -> str | None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, 443), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=sni) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None


class CA:
    def __init__(self, ca_dir: str) -> None:
        with open(f"{ca_dir}/root.key", "rb") as fh:
            self.key = serialization.load_pem_private_key(fh.read(), None)
        with open(f"{ca_dir}/root.pem", "rb") as fh:
            self.cert = x509.load_pem_x509_certificate(fh.read())

    def sign(self, csr: x509.CertificateSigningRequest, names: list[str]) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        )


def rotate(
    host: dict[str, Any],
    allvars: dict[str, Any],
    ca: CA,
    client_key: paramiko.PKey,
    lock: threading.Lock,
    known: paramiko.HostKeys,
) -> dict[str, Any]:
    start = time.monotonic()
    client = _connect(host, allvars, client_key, known)
    try:
        names = host["names"]
        key_pem, cert_pem, fp = _new_certificate(names, ca, lock)
        script = _script(host, key_pem, cert_pem, fp)
        stdin, stdout, stderr = client.exec_command("sh -s")
        stdin.write(script.encode())
        stdin.channel.shutdown_write()
        out = stdout.read().decode(errors="replace")
        if stdout.channel.recv_exit_status() != 0 or "OK" not in out:
            return {"host": host["name"], "ok": False, "error": out.strip()[-200:]}
    finally:
        client.close()
    deadline = time.monotonic() + 10
    while served_fingerprint(host["address"], names[0]) != fp:
        if time.monotonic() > deadline:
            return {"host": host["name"], "ok": False, "error": "new certificate not served"}
        time.sleep(0.02)
    return {
        "host": host["name"],
        "ok": True,
        "fingerprint": fp,
        "seconds": round(time.monotonic() - start, 3),
    }


def _connect(
    host: dict[str, Any],
    allvars: dict[str, Any],
    client_key: paramiko.PKey,
    known: paramiko.HostKeys,
) -> paramiko.SSHClient:
    """One SSH connection to ``host``, checked against the lab's known host keys."""
    client = paramiko.SSHClient()
    for key_type, host_key in (known.lookup(host["address"]) or {}).items():  # port 22
        client.get_host_keys().add(host["address"], key_type, host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host["address"],
        username=allvars["ansible_user"],
        pkey=client_key,
        look_for_keys=False,
        allow_agent=False,
        timeout=30,
    )
    return client


def _new_certificate(names: list[str], ca: CA, lock: threading.Lock) -> tuple[str, str, str]:
    """A new key and a certificate for ``names`` signed by the lab CA: key PEM, certificate
    PEM, and the certificate's SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    with lock:  # one CA key object shared by the threads
        cert = ca.sign(csr, names)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return key_pem, cert_pem, fp


def _script(host: dict[str, Any], key_pem: str, cert_pem: str, fp: str) -> str:
    """The one remote script: place the new version and the site, switch, test, reload."""
    names = host["names"]
    version = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{fp[:8]}{secrets.token_hex(2)}"
    srv = SERVERS[host["server"]]
    site = srv["site"].format(name=names[0], addr=host["listen"], root=ROOT, ciphers=CIPHERS)
    return SCRIPT.format(
        root=ROOT,
        name=names[0],
        version=version,
        key=key_pem,
        cert=cert_pem,
        site=site,
        **{k: v for k, v in srv.items() if k != "site"},
    )


def main(argv: list[str]) -> int:
    allvars, hosts = load_inventory(argv[0])
    ca = CA(allvars["issuer"]["dir"])
    client_key = paramiko.Ed25519Key.from_private_key_file(allvars["ansible_ssh_private_key_file"])
    lock = threading.Lock()
    # Parsed once: paramiko's load compares each line with every earlier one, so loading it
    # per client (client.load_host_keys) would cost O(N^3) over the fleet.
    known = paramiko.HostKeys(allvars["known_hosts"])
    results: list[dict[str, Any]] = []

    def work(host: dict[str, Any]) -> None:
        try:
            results.append(rotate(host, allvars, ca, client_key, lock, known))
        except Exception as err:  # noqa: BLE001 - report every host
            results.append(
                {"host": host["name"], "ok": False, "error": f"{type(err).__name__}: {err}"}
            )

    threads = [threading.Thread(target=work, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in sorted(results, key=lambda r: r["host"]):
        print(json.dumps(r))
    return 0 if len(results) == len(hosts) and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
