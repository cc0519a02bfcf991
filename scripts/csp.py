#!/usr/bin/env python3
"""trunk post-build hook: pins the page to its own origin with a Content-Security-Policy.

trunk writes one inline module script (the wasm initialiser) whose text changes every build, so
the policy allows exactly that script by its sha256 and nothing else inline. The policy is a
<meta> in index.html, so it holds on any static file server under any path prefix.
"""
import base64
import hashlib
import os
import re
import sys

staging = os.environ.get("TRUNK_STAGING_DIR") or (sys.argv[1] if len(sys.argv) > 1 else None)
if not staging:
    sys.exit("csp.py: TRUNK_STAGING_DIR is not set (run as a trunk post_build hook)")
path = os.path.join(staging, "index.html")
html = open(path, encoding="utf-8").read()
scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
hashes = " ".join(
    "'sha256-%s'" % base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
    for s in scripts
)
policy = "; ".join([
    "default-src 'self'",
    f"script-src 'self' 'wasm-unsafe-eval' {hashes}".strip(),
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'none'",
])
meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\s*', "", html)
html = html.replace("<head>", "<head>\n    " + meta, 1)
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    f.write(html)
os.replace(tmp, path)
print(f"csp.py: {len(scripts)} inline script(s) pinned by hash in {path}")
