"""Fonts for synthetic text: handwriting fonts (training the word/line model) and ordinary
printed fonts (teaching the reader what printed labels look like).

The fonts come from the npm registry's ``@fontsource`` packages, which carry Google's fonts
with their licences (SIL Open Font Licence 1.1, Apache 2.0, Ubuntu Font Licence). hcr ships
no font file: :func:`fetch_fonts` downloads each package's tarball (pinned version, md5 and
size checked, written atomically like every data file) into the fonts folder and unpacks the
Latin WOFF2 files and the licence next to it. Without network, place the tarballs (named
``NAME-VERSION.tgz``, as the registry serves them) in that folder by hand.

The folder is ``$HCR_FONTS_DIR``, else ``fonts`` in the user cache (``~/.cache/hcr/fonts``).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from platformdirs import user_cache_dir

from ..errors import DataError
from .download import RemoteFile, ensure_files

__all__ = ["FONTS", "FONT_KINDS", "FontFile", "FontPackage", "fetch_fonts", "font_files", "fonts_dir"]

ENV_FONTS_DIR = "HCR_FONTS_DIR"
FONT_KINDS = ("handwriting", "printed")
_REGISTRY = "https://registry.npmjs.org/@fontsource"


@dataclass(frozen=True)
class FontPackage:
    """One ``@fontsource`` package: the styles used from it (``400-normal``, ...), its
    licence (the package's own ``license`` field) and the tarball's md5 and size."""

    name: str
    version: str
    kind: str
    license: str
    md5: str
    size: int
    styles: tuple[str, ...]

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    def remote(self) -> RemoteFile:
        return RemoteFile(self.tarball, (f"{_REGISTRY}/{self.name}/-/{self.tarball}",), md5=self.md5, size=self.size)

    def member(self, style: str) -> str:
        return f"package/files/{self.name}-latin-{style}.woff2"


@dataclass(frozen=True)
class FontFile:
    """A font file on disk, its package and style."""

    path: Path
    package: FontPackage
    style: str

    @property
    def name(self) -> str:
        return f"{self.package.name} {self.style}"


def _p(name: str, version: str, kind: str, license: str, md5: str, size: int, styles: tuple[str, ...]) -> FontPackage:
    return FontPackage(name, version, kind, license, md5, size, styles)


#: Every font package hcr knows; all fetched from the npm registry (``@fontsource/NAME``).
FONTS: tuple[FontPackage, ...] = (
    # handwriting
    _p("caveat", "5.3.0", "handwriting", "OFL-1.1", "cb94cd2a6d6cb30ec3e2f6797922c56d", 1241035, ("400-normal", "700-normal")),
    _p("indie-flower", "5.3.0", "handwriting", "OFL-1.1", "9c78caab2a9fe6c7fa5cf400dd92aa5f", 70896, ("400-normal",)),
    _p("kalam", "5.3.0", "handwriting", "OFL-1.1", "c193e36d56ff845498fbf1875c1c109c", 720217, ("400-normal", "700-normal")),
    _p("patrick-hand", "5.3.0", "handwriting", "OFL-1.1", "45778bd5ea0ef8141f82988d6b5830a8", 99377, ("400-normal",)),
    _p("homemade-apple", "5.3.0", "handwriting", "Apache-2.0", "f2dd2d7e486dd2e2259b7d2cf7a587a1", 115098, ("400-normal",)),
    _p("reenie-beanie", "5.3.0", "handwriting", "OFL-1.1", "a6160877ba32f4b27f87a653a0748bbc", 56564, ("400-normal",)),
    _p("rock-salt", "5.3.0", "handwriting", "Apache-2.0", "f2045b16192da4e1316a067fcdbe73fe", 126949, ("400-normal",)),
    _p("nanum-pen-script", "5.3.0", "handwriting", "OFL-1.1", "ec892b1be1e2e9cdec48ef31822e071b", 5025053, ("400-normal",)),
    _p("dancing-script", "5.3.0", "handwriting", "OFL-1.1", "756f2932bbe92827b27d196288501c28", 391335, ("400-normal", "700-normal")),
    _p("shadows-into-light", "5.3.0", "handwriting", "OFL-1.1", "d0cad17ba0f9c3020fc19a89ad52ccb8", 61531, ("400-normal",)),
    _p("gloria-hallelujah", "5.3.0", "handwriting", "OFL-1.1", "3b872b09a3933d932868911d3f1c5ecb", 67610, ("400-normal",)),
    _p("architects-daughter", "5.3.0", "handwriting", "OFL-1.1", "bbfbca06d7ac107ceb043551b034a813", 51081, ("400-normal",)),
    _p("permanent-marker", "5.3.0", "handwriting", "Apache-2.0", "992f731a2b1413e2d34816da99fb82b3", 74241, ("400-normal",)),
    _p("covered-by-your-grace", "5.3.0", "handwriting", "OFL-1.1", "c62b5d36c59c47bd8a1cc8d2a1348301", 61092, ("400-normal",)),
    _p("just-another-hand", "5.3.0", "handwriting", "Apache-2.0", "662129a506e3c040a0c9a65ed2fa3c56", 111404, ("400-normal",)),
    _p("nothing-you-could-do", "5.3.0", "handwriting", "OFL-1.1", "c1297f68a90fc3e97300070725924f0b", 41376, ("400-normal",)),
    _p("la-belle-aurore", "5.3.0", "handwriting", "OFL-1.1", "5ad1ccf24ba84a3569b9dec226064180", 68301, ("400-normal",)),
    _p("over-the-rainbow", "5.3.0", "handwriting", "OFL-1.1", "eb7f7b62802b44df57134db091f8addc", 69299, ("400-normal",)),
    _p("waiting-for-the-sunrise", "5.3.0", "handwriting", "OFL-1.1", "bd1c2e1aad409d5164710d762c1a434a", 65056, ("400-normal",)),
    _p("zeyada", "5.3.0", "handwriting", "OFL-1.1", "a02ae02d9d9b2816729f7757a66b6fc3", 72339, ("400-normal",)),
    _p("schoolbell", "5.3.0", "handwriting", "Apache-2.0", "1f5d6d7a6d86983e2ce4166a3d99be1a", 55472, ("400-normal",)),
    _p("cedarville-cursive", "5.3.0", "handwriting", "OFL-1.1", "9677d13ebcb4da5278eb370815415e4e", 56086, ("400-normal",)),
    _p("coming-soon", "5.3.0", "handwriting", "Apache-2.0", "fa7a485619fbe6b84a573e27fb574ce8", 55063, ("400-normal",)),
    _p("handlee", "5.3.0", "handwriting", "OFL-1.1", "a394a6ca8cca65e745c8b5aac13196ac", 43606, ("400-normal",)),
    _p("sue-ellen-francisco", "5.3.0", "handwriting", "OFL-1.1", "4af5181bc456e2dfb7ad1f0576088551", 37301, ("400-normal",)),
    _p("the-girl-next-door", "5.3.0", "handwriting", "OFL-1.1", "4cec2193feb39e1a1619f39c68d5fcb1", 73252, ("400-normal",)),
    _p("gochi-hand", "5.3.0", "handwriting", "OFL-1.1", "d912259ca75ef7f55fc990943c4fd0f3", 49318, ("400-normal",)),
    _p("annie-use-your-telescope", "5.3.0", "handwriting", "OFL-1.1", "5a3bbae52957a5e890ea9f77664026f2", 58047, ("400-normal",)),
    _p("loved-by-the-king", "5.3.0", "handwriting", "OFL-1.1", "401b9b6c3cf04d3a031e40e85537f8eb", 46000, ("400-normal",)),
    _p("short-stack", "5.3.0", "handwriting", "OFL-1.1", "40871cc2e10136c0c88991fc2eac4f50", 59424, ("400-normal",)),
    _p("walter-turncoat", "5.3.0", "handwriting", "Apache-2.0", "ed4ca076b018d1cca735ba16d2077ac4", 139214, ("400-normal",)),
    _p("crafty-girls", "5.3.0", "handwriting", "Apache-2.0", "c4d211f883befbe550e9f60f4337ffb3", 79851, ("400-normal",)),
    _p("calligraffitti", "5.3.0", "handwriting", "Apache-2.0", "9c128043620ee5930e5f904f69d0f40b", 64541, ("400-normal",)),
    _p("mansalva", "5.3.0", "handwriting", "OFL-1.1", "6e17d4e8583dec0b2e14cd2ea388a57b", 273356, ("400-normal",)),
    _p("caveat-brush", "5.3.0", "handwriting", "OFL-1.1", "1355ab3260553a26d70f41efbba20299", 196617, ("400-normal",)),
    _p("marck-script", "5.3.0", "handwriting", "OFL-1.1", "968e41fa05d82b34b16caebe710bf208", 80481, ("400-normal",)),
    _p("shadows-into-light-two", "5.3.0", "handwriting", "OFL-1.1", "cda22f5222170760a968a3e993f217a4", 59066, ("400-normal",)),
    _p("itim", "5.3.0", "handwriting", "OFL-1.1", "1d3814f5b1c03303150488f9ac7dd3db", 210333, ("400-normal",)),
    _p("mali", "5.3.0", "handwriting", "OFL-1.1", "d0c834c611007f0f79ab33d7f9f347b9", 1418788, ("400-normal", "700-normal")),
    _p("edu-sa-beginner", "5.3.0", "handwriting", "OFL-1.1", "1f4dbbfa67231ae859740ec7bb01958d", 90765, ("400-normal", "700-normal")),
    _p("edu-vic-wa-nt-beginner", "5.3.0", "handwriting", "OFL-1.1", "91d93530480f4442391e9e5d47daeac6", 92738, ("400-normal", "700-normal")),
    _p("edu-nsw-act-foundation", "5.3.0", "handwriting", "OFL-1.1", "d7369f2d3cf5fd7639ab2cbcdeccc7cc", 99959, ("400-normal", "700-normal")),
    _p("edu-qld-beginner", "5.3.0", "handwriting", "OFL-1.1", "dd459440ad96e5b08be677af49443a5b", 101074, ("400-normal", "700-normal")),
    _p("edu-tas-beginner", "5.3.0", "handwriting", "OFL-1.1", "b52ab2a213f882c71c0b44e40b6b0010", 90526, ("400-normal", "700-normal")),
    _p("neucha", "5.3.0", "handwriting", "OFL-1.1", "f84f36878cbedb8e4c0ab14c8d977bba", 76568, ("400-normal",)),
    _p("pangolin", "5.3.0", "handwriting", "OFL-1.1", "43f13bc322950955b946f40421469dd6", 392670, ("400-normal",)),
    _p("kristi", "5.3.0", "handwriting", "OFL-1.1", "3b5cc4a0f2850f3a0292ffdea91695f6", 51260, ("400-normal",)),
    _p("sriracha", "5.3.0", "handwriting", "OFL-1.1", "8a9048dd556156b4b2affe187a6d644c", 183300, ("400-normal",)),
    _p("delius", "5.3.0", "handwriting", "OFL-1.1", "ca73a372d272b1537d2107c6ba073df4", 44939, ("400-normal",)),
    _p("amatic-sc", "5.3.0", "handwriting", "OFL-1.1", "d03d974cc45b5e211f5f1e8db20423f2", 337515, ("400-normal", "700-normal")),
    _p("just-me-again-down-here", "5.3.0", "handwriting", "OFL-1.1", "749a4ce1e9ca9417a45286d15058e4cd", 60957, ("400-normal",)),
    _p("swanky-and-moo-moo", "5.3.0", "handwriting", "OFL-1.1", "3fbcfe59c14f132f9a0275ffea8885a7", 66162, ("400-normal",)),
    _p("dawning-of-a-new-day", "5.3.0", "handwriting", "OFL-1.1", "c565992c832e6b158afd41ce6d42048c", 46470, ("400-normal",)),
    _p("mynerve", "5.3.0", "handwriting", "OFL-1.1", "9fad09742e9c4cc99dd736f1c31a594e", 256618, ("400-normal",)),
    _p("square-peg", "5.3.0", "handwriting", "OFL-1.1", "371379b352f39f8f71916eabbb9a34c0", 128684, ("400-normal",)),
    _p("comic-neue", "5.3.0", "handwriting", "OFL-1.1", "a45725c1f0c28f98e3c4d9349d231370", 221867, ("400-normal", "700-normal")),
    _p("fuzzy-bubbles", "5.3.0", "handwriting", "OFL-1.1", "1591109ad917f7c8f068ec4138b6d031", 232963, ("400-normal", "700-normal")),
    # printed
    _p("roboto", "5.3.0", "printed", "OFL-1.1", "f0a0b13617b0ddc4a0a5c177c2fb437f", 4049049, ("400-normal", "700-normal", "400-italic")),
    _p("open-sans", "5.3.0", "printed", "OFL-1.1", "3843bf18a052a0bbb0acc1d42c7e799f", 2716883, ("400-normal", "700-normal", "400-italic")),
    _p("lato", "5.3.0", "printed", "OFL-1.1", "e919ee054c7cedef5c206666be172561", 490999, ("400-normal", "700-normal", "400-italic")),
    _p("arimo", "5.3.0", "printed", "OFL-1.1", "87687461e9242811745ffa8d4d52284f", 2331821, ("400-normal", "700-normal", "400-italic")),
    _p("tinos", "5.3.0", "printed", "OFL-1.1", "87aa3576d5408eeea83f2bfab55d79ca", 1417704, ("400-normal", "700-normal", "400-italic")),
    _p("cousine", "5.3.0", "printed", "OFL-1.1", "ef80bcaa7198ff60961066562ab749b0", 1032508, ("400-normal", "700-normal", "400-italic")),
    _p("noto-sans", "5.3.0", "printed", "OFL-1.1", "299bec2e5b050a1f78cca6c9881e8fbe", 6927031, ("400-normal", "700-normal", "400-italic")),
    _p("noto-serif", "5.3.0", "printed", "OFL-1.1", "dc7b82e94f187e653a554604e09dacb6", 7105480, ("400-normal", "700-normal", "400-italic")),
    _p("source-sans-3", "5.3.1", "printed", "OFL-1.1", "8ccffafe6058bef00729308d558fafa7", 2924769, ("400-normal", "700-normal", "400-italic")),
    _p("source-serif-4", "5.3.1", "printed", "OFL-1.1", "ced7294b2417822e38b750201b75db58", 2618642, ("400-normal", "700-normal", "400-italic")),
    _p("pt-sans", "5.3.0", "printed", "OFL-1.1", "e889dba64154d2fd6ceb39ef89d68ffd", 717884, ("400-normal", "700-normal", "400-italic")),
    _p("pt-serif", "5.3.0", "printed", "OFL-1.1", "6127a2e2137036b63f1703162a7bbc1a", 638872, ("400-normal", "700-normal", "400-italic")),
    _p("merriweather", "5.3.0", "printed", "OFL-1.1", "909fe81fd2877f886ce8a50c03f5ff9d", 4730247, ("400-normal", "700-normal", "400-italic")),
    _p("montserrat", "5.3.0", "printed", "OFL-1.1", "9ea2e3ded6d0137852a2075679687c7d", 3080222, ("400-normal", "700-normal", "400-italic")),
    _p("oswald", "5.3.0", "printed", "OFL-1.1", "28d398631f5291004559b07294c637b3", 565176, ("400-normal", "700-normal")),
    _p("roboto-condensed", "5.3.0", "printed", "OFL-1.1", "d07303bd0487cb5b774a4a5f7f077219", 2790034, ("400-normal", "700-normal", "400-italic")),
    _p("roboto-slab", "5.3.0", "printed", "Apache-2.0", "b2da194a351bc609ed61eb46c9cdeae9", 1107358, ("400-normal", "700-normal")),
    _p("roboto-mono", "5.3.0", "printed", "OFL-1.1", "b4f62175c5b7f1c876d879b68c95bc75", 1726476, ("400-normal", "700-normal", "400-italic")),
    _p("ibm-plex-sans", "5.3.0", "printed", "OFL-1.1", "48473034cfc69d151a16dbf090a85ba6", 2324173, ("400-normal", "700-normal", "400-italic")),
    _p("ibm-plex-serif", "5.3.0", "printed", "OFL-1.1", "8079ca9d84c48fe010ba4c55e7482864", 1710202, ("400-normal", "700-normal", "400-italic")),
    _p("ibm-plex-mono", "5.3.0", "printed", "OFL-1.1", "2a1ab63f1194e029dec967161f7db93c", 1344435, ("400-normal", "700-normal", "400-italic")),
    _p("fira-sans", "5.3.0", "printed", "OFL-1.1", "c7d4775c7705d36a9a0ab1658207a7d2", 4430621, ("400-normal", "700-normal", "400-italic")),
    _p("inter", "5.3.0", "printed", "OFL-1.1", "920a299f448903021011f79ad9b5c6b1", 4050993, ("400-normal", "700-normal", "400-italic")),
    _p("work-sans", "5.3.0", "printed", "OFL-1.1", "f6f9044303e50b8d02702ac7a5315a2f", 1656011, ("400-normal", "700-normal", "400-italic")),
    _p("libre-baskerville", "5.3.0", "printed", "OFL-1.1", "30e4d417d907aec6ea41fcdffa8b3d0d", 811084, ("400-normal", "700-normal", "400-italic")),
    _p("courier-prime", "5.3.0", "printed", "OFL-1.1", "2bd2f29825823ddc30bfc90cde455e84", 241987, ("400-normal", "700-normal", "400-italic")),
    _p("barlow", "5.3.0", "printed", "OFL-1.1", "3731d007e629adc54b2404b63ee94ecf", 1484496, ("400-normal", "700-normal", "400-italic")),
    _p("ubuntu", "5.3.0", "printed", "UFL-1.0", "be6ddb6668b3fa397f0d38bae507795f", 1854897, ("400-normal", "700-normal", "400-italic")),
    _p("archivo", "5.3.0", "printed", "OFL-1.1", "67adfbff4c7b5775d4ec115a3a8ecd2b", 1393220, ("400-normal", "700-normal", "400-italic")),
    _p("nunito-sans", "5.3.0", "printed", "OFL-1.1", "5559d68298676fcaa06f984f3b060678", 1756198, ("400-normal", "700-normal", "400-italic")),
    _p("eb-garamond", "5.3.0", "printed", "OFL-1.1", "0542d16bada88394cf19e4441173bf57", 3065511, ("400-normal", "700-normal", "400-italic")),
    _p("libre-franklin", "5.3.0", "printed", "OFL-1.1", "a1a788e44972ac5f8036c73a0257382c", 2287786, ("400-normal", "700-normal", "400-italic")),
    _p("oxygen", "5.3.0", "printed", "OFL-1.1", "150826326ed6fc1048e58a2c553e72ad", 147499, ("400-normal", "700-normal")),
    _p("karla", "5.3.0", "printed", "OFL-1.1", "27b649a59b3ebe262402fd03c19bd399", 658527, ("400-normal", "700-normal", "400-italic")),
    _p("rubik", "5.3.0", "printed", "OFL-1.1", "46785cacd67fd6d2184de1cfd3988d80", 2063618, ("400-normal", "700-normal", "400-italic")),
    _p("dm-sans", "5.3.0", "printed", "OFL-1.1", "3e928de0a2f498092a20b26db5c059eb", 904501, ("400-normal", "700-normal", "400-italic")),
    _p("manrope", "5.3.0", "printed", "OFL-1.1", "89db08da4b42c694c82a9b758df3d9b2", 627974, ("400-normal", "700-normal")),
    _p("pt-mono", "5.3.0", "printed", "OFL-1.1", "4de03c19598bd79dc11a0ab57ab8e725", 124960, ("400-normal",)),
    _p("space-mono", "5.3.0", "printed", "OFL-1.1", "8b05aecb998651511970d346fb3808be", 293964, ("400-normal", "700-normal", "400-italic")),
    _p("crimson-text", "5.3.0", "printed", "OFL-1.1", "8777b55e6b35fb90634d0b3ee3e53c9e", 608213, ("400-normal", "700-normal", "400-italic")),
)


def fonts_dir() -> Path:
    """``$HCR_FONTS_DIR``, else ``fonts`` in the user cache."""
    env = os.environ.get(ENV_FONTS_DIR)
    return Path(env).expanduser() if env else Path(user_cache_dir("hcr")) / "fonts"


def _packages(kind: str | None, names: Sequence[str] | None = None) -> list[FontPackage]:
    if kind is not None and kind not in FONT_KINDS:
        raise DataError(f"unknown font kind {kind!r}; use one of {', '.join(FONT_KINDS)}")
    chosen = [p for p in FONTS if kind is None or p.kind == kind]
    if names:
        known = {p.name for p in chosen}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DataError(f"unknown font package(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        chosen = [p for p in chosen if p.name in names]
    return chosen


def _unpack(pkg: FontPackage, tarball: Path, folder: Path) -> None:
    """The package's WOFF2 files of its styles and its LICENSE, each written atomically."""
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            wanted = {pkg.member(s): f"{pkg.name}-{s}.woff2" for s in pkg.styles}
            wanted["package/LICENSE"] = f"{pkg.name}-LICENSE.txt"
            for member, filename in wanted.items():
                final = folder / filename
                if final.is_file():
                    continue
                src = tf.extractfile(member)
                if src is None:
                    raise DataError(f"{tarball}: no file {member}")
                part = folder / f".{filename}.part"
                try:
                    part.write_bytes(src.read())
                    os.replace(part, final)
                finally:
                    part.unlink(missing_ok=True)
    except KeyError as e:
        raise DataError(f"{tarball}: the package has no {e}") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{tarball}: not a readable font package ({e}); delete it to download it again") from None


def fetch_fonts(kind: str | None = None, *, names: Sequence[str] | None = None, download: bool = True, progress: bool = True) -> list[FontFile]:
    """Every font file of ``kind`` (``handwriting``, ``printed`` or both), downloaded and
    verified where missing (``download=False``: an error names what is missing and where
    to put it)."""
    folder = fonts_dir()
    pkgs = _packages(kind, names)
    tarballs = ensure_files([p.remote() for p in pkgs], folder, download=download, progress=progress)
    out: list[FontFile] = []
    for pkg, tarball in zip(pkgs, tarballs):
        _unpack(pkg, tarball, folder)
        out.extend(FontFile(folder / f"{pkg.name}-{s}.woff2", pkg, s) for s in pkg.styles)
    return out


def font_files(kind: str, names: Sequence[str] | None = None) -> list[FontFile]:
    """The font files of ``kind`` in the fonts folder, without downloading anything; a
    :class:`~hcr.errors.DataError` says how to get them when one is missing."""
    return fetch_fonts(kind, names=names, download=False, progress=False)
