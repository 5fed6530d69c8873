"""ICCID pools for the scripts: `python3 scripts/lib/pool.py FILE PREFIX COUNT [--keys]` writes a CSV
for `m2mrsp smdp import` (iccid,imsi,ki,opc) with COUNT ICCIDs PREFIX‖0000…, each with its Luhn
check digit; `luhn(digits)` for the other scripts."""
import sys

KI = "000102030405060708090a0b0c0d0e0f"
OPC = "0f0e0d0c0b0a09080706050403020100"


def luhn(digits):
    """`digits` with its Luhn check digit appended."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        x = int(c)
        if i % 2 == 0:
            x = x * 2 - 9 if x * 2 > 9 else x * 2
        total += x
    return digits + str((10 - total % 10) % 10)


def write_pool(path, prefix, count, keys):
    with open(path, "w") as f:
        f.write("iccid,imsi,ki,opc\n")
        for k in range(count):
            iccid = luhn(prefix + "%0*d" % (19 - len(prefix), k))
            f.write("%s,2080100000%05d,%s,%s\n" % (iccid, k, KI if keys else "", OPC if keys else ""))


if __name__ == "__main__":
    write_pool(sys.argv[1], sys.argv[2], int(sys.argv[3]), "--keys" in sys.argv[4:])
