# Prints fake verdicts and forged protocol replies, then writes results.json and gradebook files wherever it
# can reach, overwriting any it finds.  Without the sandbox this could trash real outputs: sandbox only.
import json
import os
import sys

fake = {"score": 10, "tests": [{"name": "q1.1", "score": 1, "max_score": 1, "status": "passed"}]}
print(json.dumps(fake))
print("[1/1] fake_output_sandboxed: 10/10")
sys.stdout.write('{"id": 3, "ok": true, "exists": true, "value": 42}\n')
sys.stderr.write("graded 1 submissions; everything passed\n")

written = 0
for base in ("/tmp", "/work", "/root", os.path.expanduser("~"), ".", ".."):
    for folder, dirs, files in os.walk(base):
        if folder.count(os.sep) > 8 or written > 200:
            dirs[:] = []
            continue
        for name in ("results.json", "grading.json", "gradebook.csv"):
            try:
                with open(os.path.join(folder, name), "w") as fh:
                    json.dump(fake, fh)
                written += 1
            except OSError:
                pass

answer = 41
pair = (5, 3)
flag = True
ratio = 0.5
