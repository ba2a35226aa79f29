"""Helpers of scripts/demo: the parts that read JSON or sockets, which bash cannot.

    demo.py free-port                   a free TCP port on 127.0.0.1
    demo.py notify SOCKET LOG           the NOTIFY_SOCKET of `renewd run`: every message
                                        to LOG; READY=1, RELOADING=1, STOPPING=1 and
                                        ERRNO= also to stdout, one per line
    demo.py narrate DIR CUTOFF          one line per certificate installed and circuit
                                        change since the last call, up to CUTOFF (from
                                        DIR/status.json, ledger.json, renewd.log); exit 0
                                        when every certificate is valid, 3 if not yet
    demo.py ledger DIR                  the interesting rows of DIR/ledger.txt (the table),
                                        chosen from DIR/ledger.json, oldest first
    demo.py summary DIR                 the figures, from the CAs' counts and renewd's state
    demo.py check DIR                   the smoke expectations; exit 1 if any fails
    demo.py lego DIR STATUS             lego's run, from DIR/counts-{before,after}-lego.json

DIR holds what scripts/demo wrote: status.json, ledger.json, ledger.txt, and per CA
counts-NAME.json and certificates-NAME.json (GET /counts and /certificates of its
management endpoint). Only the standard library: the demo runs on a fresh machine.
"""

import json
import os
import random
import re
import signal
import socket
import sys
from collections import Counter, defaultdict
from datetime import datetime

CAS = ("zerossl", "letsencrypt")
# [breaker] failure_threshold in the config scripts/demo writes.
BREAKER_THRESHOLD = 3

REASON = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}

STEP_WORDS = {
    "directory": "the directory",
    "nonce": "new-nonce",
    "account": "new-account",
    "new_order": "new-order",
    "authorization": "an authorization",
    "challenge": "the challenge",
    "finalize": "finalize",
    "poll_order": "the order poll",
    "download": "the certificate download",
    "renewal_info": "renewal-info",
    "probe": "the health probe",
}


def load(dir_, name):
    with open(os.path.join(dir_, name), encoding="utf-8") as f:
        return json.load(f)


def http(status):
    if status is None:
        return "no answer"
    return f"{status} {REASON.get(status, '')}".strip()


def free_port():
    """A random port below the kernel's ephemeral range that binds now, as renewd's tests
    choose theirs: a port from bind(0) is ephemeral, and the CAs' own bind(0) listeners or
    an outgoing connection could take it before renewd binds its responder there."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    if first >= 11000:
        rng = random.SystemRandom()
        for _ in range(1000):
            port = rng.randrange(10000, first)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            print(port)
            return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def notify(path, log_path):
    """Receives sd_notify datagrams until SIGTERM, then drains what is queued and exits."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    lifecycle = ("READY=", "RELOADING=", "STOPPING=", "ERRNO=")
    with open(log_path, "a", encoding="utf-8") as log:
        print("LISTENING", flush=True)
        sock.settimeout(0.2)
        while True:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if stop:
                    return
                continue
            except InterruptedError:
                continue
            for line in data.decode("utf-8", "replace").splitlines():
                log.write(line + "\n")
                log.flush()
                if line.startswith(lifecycle):
                    print(line, flush=True)


def chronological(rows):
    """The ledger is newest first; its rows in the order they happened."""
    return list(reversed(rows))


def finalize_failures(rows):
    """Each failed finalize with what became of its order, from one certificate's or the
    whole ledger (newest first). `after`: the order turned out valid — the certificate had
    been issued behind the error, renewd downloaded it; `before`: the order was still ready
    and renewd finalized it again (same key, same CSR); `open`: neither (yet)."""
    rows = chronological(rows)
    out = []
    for i, r in enumerate(rows):
        if r["step"] != "finalize" or r["class"] == "ok":
            continue
        later = [o for o in rows[i + 1 :] if o["order_url"] == r["order_url"]]
        # Finalized again (whatever the answer): the order was still ready, nothing issued.
        refinalized = any(o["step"] == "finalize" for o in later)
        downloaded = any(o["step"] == "download" and o["class"] == "ok" for o in later)
        repolled = any(o["step"] == "poll_order" and o["class"] == "ok" for o in later)
        if refinalized:
            fate = "before"
        elif downloaded and repolled:
            fate = "after"
        else:
            fate = "open"
        out.append((r, fate))
    return out


def log_facts(dir_):
    """What renewd's log (human format) adds to the ledger, with each line's timestamp:
    circuit changes, in order; when each certificate was installed; and per certificate
    the CAs it skipped (`circuit`: open) or whose health probe failed (`probe`)."""
    circuits, installed, skipped = [], {}, defaultdict(list)
    path = os.path.join(dir_, "renewd.log")
    if not os.path.exists(path):
        return circuits, installed, skipped
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            at = line.split(" ", 1)[0]
            ca = re.search(r" ca=([\w.-]+)", line)
            cert = re.search(r" cert_name=\"?([\w.-]+)", line)
            if "circuit opened" in line and ca:
                until = re.search(r'open_until="?[^T\s"]*T(\d\d:\d\d:\d\d)', line)
                circuits.append((at, ca.group(1), "open", until.group(1) if until else None))
            elif "circuit changed" in line and ca:
                state = re.search(r'circuit="(\w+)"', line)
                circuits.append((at, ca.group(1), state.group(1) if state else "?", None))
            elif "certificate renewed and installed" in line and cert:
                installed[cert.group(1)] = at
            elif "skipping: " in line and cert and ca:
                skipped[cert.group(1)].append((ca.group(1), "circuit"))
            elif "health probe failed" in line and cert and ca:
                skipped[cert.group(1)].append((ca.group(1), "probe"))
    return circuits, installed, skipped


def circuit_sentence(ca, state, until):
    if state == "open":
        return (
            f"{ca}'s circuit opened after {BREAKER_THRESHOLD} failed attempts in a row: no new orders go there"
            + (f" until {until} UTC" if until else "")
            + " (orders already there go on)"
        )
    if state == "closed":
        return f"{ca}'s circuit closed again: an order at {ca} completed"
    if state == "half_open":
        return f"{ca}'s circuit is half-open: one trial order may go there"
    return f"{ca}'s circuit is {state}"


def story(cert, rows, first_ca, skipped=()):
    """One plain sentence of what happened to a certificate that is now valid."""
    rows = [r for r in chronological(rows) if r["cert"] == cert["name"]]
    issuer = cert["issuer_ca"]
    parts = []
    # Failed finalizes alike (same order, status and fate) are told once, with a count.
    alike = Counter(
        (r["order_url"], r["ca"], r["http_status"], fate)
        for r, fate in finalize_failures(list(reversed(rows)))
    )
    for (_, ca, code, fate), n in alike.items():
        status = http(code) + ("" if n == 1 else f" ({n} times)")
        if fate == "after":
            parts.append(
                f"{ca} answered finalize with {status} after issuing; renewd re-polled "
                "the order and downloaded the certificate instead of ordering again"
            )
        elif fate == "before":
            parts.append(
                f"{ca} answered finalize with {status} before issuing; renewd re-polled "
                "the order (still ready) and finalized the same order again"
            )
        else:
            parts.append(f"{ca} answered finalize with {status}; renewd re-polled the order")
    # Requests that failed (the ledger's rows of class `local` are renewd's own notes).
    others = Counter(
        (r["ca"], r["step"], r["http_status"])
        for r in rows
        if r["class"] not in ("ok", "local") and r["step"] not in ("finalize", "new_order")
    )
    for (ca, step, status), n in others.items():  # in the order they first happened
        times = "" if n == 1 else f" ({n} times)"
        parts.append(f"{ca} answered {STEP_WORDS.get(step, step)} with {http(status)}{times}; renewd asked again")
    refused = [r for r in rows if r["step"] == "new_order" and r["class"] != "ok"]
    # renewd notes `poll_order` / `local` when it gives up a pending order.
    abandoned = [r for r in rows if r["step"] == "poll_order" and r["class"] == "local"]
    if issuer != first_ca:
        if abandoned:
            why = (
                f"{abandoned[-1]['ca']} did not complete the order within its order_timeout; "
                "renewd gave that order up"
            )
        elif refused:
            why = f"{refused[-1]['ca']} answered new-order with {http(refused[-1]['http_status'])}"
        elif skipped:
            ca, reason = skipped[-1]
            if reason == "circuit":
                why = f"{ca}'s circuit is open: no order sent there"
            else:
                why = f"{ca}'s health probe failed: no order sent there"
        else:
            why = f"{first_ca} failed"
        parts.append(f"{why}; renewd failed over to {issuer}")
    if not parts:
        parts.append("issued at the first try")
    return "; ".join(parts)


def when(stamp):
    """A log line's or the script's UTC timestamp (RFC 3339) as a datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def narrate(dir_, cutoff):
    """Tells, in the order they happened, the circuit changes and the certificates
    installed since the last call, up to `cutoff` (the time just before `status.json` was
    taken: every certificate installed by then is valid in it, so nothing is told out of
    order; later events wait for the next call)."""
    status = load(dir_, "status.json")
    ledger = load(dir_, "ledger.json")
    circuits, installed, skipped = log_facts(dir_)
    seen_path = os.path.join(dir_, "narrated.json")
    seen = load(dir_, "narrated.json") if os.path.exists(seen_path) else {"certs": [], "circuits": 0}
    total = len(status)
    width = max(len(c["name"]) for c in status)
    limit = when(cutoff)
    events = []
    for at, ca, state, until in circuits[seen["circuits"] :]:
        if when(at) > limit:
            break
        events.append((when(at), "circuit", (ca, state, until)))
        seen["circuits"] += 1
    for c in status:
        # Without its log line (another log format) a valid certificate is told now.
        at = when(installed[c["name"]]) if c["name"] in installed else limit
        if c["state"] == "valid" and at <= limit and c["name"] not in seen["certs"]:
            events.append((at, "cert", c))
    for _, kind, what in sorted(events, key=lambda e: e[0]):
        if kind == "circuit":
            print(f"  {'':7} {'':<{width}}  {'':<11}  {circuit_sentence(*what)}")
        else:
            seen["certs"].append(what["name"])
            line = story(what, ledger, CAS[0], skipped.get(what["name"], []))
            print(f"  [{len(seen['certs']):2}/{total}] {what['name']:<{width}}  {what['issuer_ca']:<11}  {line}")
    with open(seen_path, "w", encoding="utf-8") as f:
        json.dump(seen, f)
    done = len(seen["certs"]) == total and all(c["state"] == "valid" for c in status)
    return 0 if done and windows_fetched(status, ledger) else 3


def windows_fetched(status, rows):
    """Whether renewd has asked for the renewal window (ARI) of every installed certificate
    since installing it: the last request of a renewal, after which the ledger is still."""
    for c in status:
        mine = [r for r in rows if r["cert"] == c["name"]]  # newest first
        install = next((i for i, r in enumerate(mine) if r["step"] == "install"), None)
        if install is None or not any(r["step"] == "renewal_info" for r in mine[:install]):
            return False
    return True


def interesting(rows):
    """Indexes (into the newest-first ledger) of the rows worth showing: every failure,
    the first good re-poll of an order after its failed finalize, the downloads that
    followed it, and the health probes."""
    keep = set()
    n = len(rows)
    for i, r in enumerate(rows):
        if r["class"] != "ok" or r["step"] == "probe":
            keep.add(i)
    # rows[j] with j < i is later in time than rows[i].
    for i, r in enumerate(rows):
        if r["step"] != "finalize" or r["class"] == "ok":
            continue
        same = [j for j in range(i - 1, -1, -1) if rows[j]["order_url"] == r["order_url"]]
        polls = [j for j in same if rows[j]["step"] == "poll_order" and rows[j]["class"] == "ok"]
        if polls:
            keep.add(polls[0])
        for j in same:
            if rows[j]["step"] in ("finalize", "download") and rows[j]["class"] == "ok":
                keep.add(j)
                break
    return sorted(keep, reverse=True)


def ledger(dir_, detail_width=72):
    rows = load(dir_, "ledger.json")
    with open(os.path.join(dir_, "ledger.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    if len(lines) != len(rows) + 1:
        print(f"(the table has {len(lines) - 1} rows, the JSON {len(rows)}: showing failures only)")
        keep_lines = [lines[0]] + [l for l in lines[1:] if " ok " not in l]
    else:
        keep_lines = [lines[0]] + [lines[1 + i] for i in interesting(rows)]
    cut = lines[0].find("DETAIL")
    for l in keep_lines:
        if cut > 0:
            # The request's URL is in the JSON; the table keeps what the CA answered.
            detail = re.sub(r"https?://\S+ ", "", l[cut:])
            if len(detail) > detail_width:
                detail = detail[: detail_width - 1] + "…"
            l = l[:cut] + detail
        print(l.rstrip())
    return 0


def serial(s):
    return (s or "").lower().lstrip("0")


def figures(dir_):
    status = load(dir_, "status.json")
    ledger_rows = load(dir_, "ledger.json")
    f = {"cas": {}}
    installed = {serial(c["serial"]): c for c in status if c["serial"]}
    for ca in CAS:
        counts = load(dir_, f"counts-{ca}.json")
        issued = [serial(c["serial"]) for c in load(dir_, f"certificates-{ca}.json")]
        from_here = [c for c in status if c["issuer_ca"] == ca and c["state"] == "valid"]
        kept = [s for s in issued if s in installed and installed[s]["issuer_ca"] == ca]
        requests = counts.get("requests", {})
        f["cas"][ca] = {
            "orders": counts["orders_created"],
            "issued": counts["certificates_issued"],
            "installed": len(kept),
            "wasted": counts["certificates_issued"] - len(kept),
            "certs": len(from_here),
            "faults": counts["faults_injected"],
            "faulted": {k: v["faulted"] for k, v in requests.items() if v["faulted"]},
            "finalize_faulted": requests.get("finalize", {}).get("faulted", 0),
            # Failed requests; `local` rows are renewd's own notes, not answers of the CA.
            "ledger_failures": sum(
                1 for r in ledger_rows if r["ca"] == ca and r["class"] not in ("ok", "local")
            ),
            "ledger_finalize_failures": sum(
                1 for r in ledger_rows if r["ca"] == ca and r["step"] == "finalize" and r["class"] != "ok"
            ),
        }
    fates = Counter(fate for _, fate in finalize_failures(ledger_rows))
    f["finalize"] = {k: fates.get(k, 0) for k in ("after", "before", "open")}
    f["finalize_by_status"] = Counter(
        str(r["http_status"]) for r, _ in finalize_failures(ledger_rows)
    )
    f["valid"] = sum(1 for c in status if c["state"] == "valid")
    f["total"] = len(status)
    f["failed_over"] = sorted(c["name"] for c in status if c["issuer_ca"] not in (None, CAS[0]))
    return f


def summary(dir_):
    f = figures(dir_)
    cas = f["cas"]
    tot = lambda k: sum(c[k] for c in cas.values())  # noqa: E731
    rows = [
        ("orders created", "orders"),
        ("certificates issued", "issued"),
        ("  of which renewd installed", "installed"),
        ("wasted issuances (issued - installed)", "wasted"),
        ("certificates renewd holds from this CA", "certs"),
        ("faults the CA injected", "faults"),
    ]
    print(f"  {'':40}{'zerossl':>9}{'letsencrypt':>13}{'total':>8}")
    for label, key in rows:
        z, l = cas["zerossl"][key], cas["letsencrypt"][key]
        print(f"  {label:40}{z:>9}{l:>13}{z + l:>8}")
    print()
    fin = f["finalize"]
    by_status = ", ".join(f"{n} x {http(int(s))}" for s, n in sorted(f["finalize_by_status"].items()))
    nfin = sum(fin.values())
    print(f"  Finalize errors at zerossl: {nfin} ({by_status or 'none'}).")
    print(
        f"    {fin['after']} came after the CA had issued: renewd re-polled each order and "
        "downloaded the certificate (no second order, nothing wasted)."
    )
    print(
        f"    {fin['before']} came before the CA issued: renewd re-polled, found the order still "
        "ready and finalized the same order again."
    )
    if fin["open"]:
        print(f"    {fin['open']} left an order that did not complete.")
    z = cas["zerossl"]
    faulted = ", ".join(f"{k} {v}" for k, v in sorted(z["faulted"].items()))
    print(f"  Faults zerossl injected, by endpoint: {faulted or 'none'}.")
    print(
        f"  renewd's ledger holds {z['ledger_failures']} failed requests at zerossl "
        f"({z['ledger_finalize_failures']} of them finalize; the CA counted "
        f"{z['finalize_faulted']} faulted finalize requests)."
    )
    print(
        f"  Failover: {len(f['failed_over'])} of {f['total']} certificates came from letsencrypt "
        f"({', '.join(f['failed_over']) or 'none'}); {cas['zerossl']['certs']} from zerossl, "
        "the preferred CA."
    )
    print(f"  Wasted issuances: {tot('wasted')}.")
    return 0


def check(dir_):
    f = figures(dir_)
    z, l = f["cas"]["zerossl"], f["cas"]["letsencrypt"]
    expectations = [
        (f"every certificate valid ({f['valid']}/{f['total']})", f["valid"] == f["total"] == 20),
        (
            f"nothing wasted (zerossl {z['wasted']}, letsencrypt {l['wasted']})",
            z["wasted"] == 0 and l["wasted"] == 0,
        ),
        (
            f"failover happened (zerossl {z['certs']}, letsencrypt {l['certs']} certificates)",
            z["certs"] > 0 and l["certs"] > 0,
        ),
        (
            f"a finalize answered after issuing was recovered by re-polling ({f['finalize']['after']})",
            f["finalize"]["after"] > 0,
        ),
        (f"no finalize left an order hanging ({f['finalize']['open']})", f["finalize"]["open"] == 0),
        (
            "the ledger holds every finalize error the CA injected "
            f"({z['ledger_finalize_failures']} = {z['finalize_faulted']})",
            z["ledger_finalize_failures"] == z["finalize_faulted"],
        ),
        (
            f"the ledger holds every fault the CA injected ({z['ledger_failures']} = {z['faults']})",
            z["ledger_failures"] == z["faults"],
        ),
    ]
    failed = 0
    for what, ok in expectations:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        failed += not ok
    return 1 if failed else 0


def lego(dir_, status):
    """lego's one run against zerossl, from the CA's counts before and after it."""
    before, after = load(dir_, "counts-before-lego.json"), load(dir_, "counts-after-lego.json")

    def delta(key):
        return after[key] - before[key]

    def downloads(c):
        return c.get("requests", {}).get("certificate", {}).get("total", 0)

    issued = delta("certificates_issued")
    fetched = downloads(after) - downloads(before)
    saved = os.path.exists(os.path.join(dir_, "lego", "certificates", "lego.example.com.crt"))
    wasted = issued - (1 if saved else 0)
    print(
        f"lego exited with status {status} and saved {'a' if saved else 'no'} certificate; zerossl: "
        f"{delta('orders_created')} order, {issued} certificate issued, {fetched} downloaded"
    )
    if wasted:
        print(
            f"-> {wasted} wasted issuance: lego stopped at the gateway error and never looked "
            "at the order again (renewd re-polled and downloaded: 0 wasted)"
        )
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "free-port":
        free_port()
        return 0
    if cmd == "notify":
        notify(*args)
        return 0
    handlers = {"narrate": narrate, "ledger": ledger, "summary": summary, "check": check, "lego": lego}
    if cmd in handlers:
        return handlers[cmd](*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
