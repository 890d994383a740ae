"""Version strings as tuples: the bottom module every other one may import."""
import re


def version_tuple(text):
    """'2.2.4' -> (2, 2, 4); '2.4.0-rc1' -> (2, 4, 0); anything unreadable -> ()."""
    return tuple(int(part) for part in re.findall(r"\d+", str(text).split("-")[0].split("+")[0])[:3])
