"""Ruby 3.1's encoding tables, for `ruby_encodings`: which `enc/` libraries an
encoding's name and a conversion load.

Read from the real Ruby 3.1 of Debian bookworm (`ruby3.1`), not typed by hand:
for each name of `Encoding.name_list`, the encoding `Encoding.find` gives and the
`enc/*.so` it loads; for each pair of encodings with a direct transcoder (a
`search_convpath` one step long), the `enc/` and `enc/trans/` libraries
`search_convpath` loads, each in a fresh forked process. The image's
`encdb.so`/`transdb.so` hold these tables only as C code (`rb_encdb_declare`,
`rb_encdb_alias`, `rb_declare_transcoder` calls), not as data a reader can pair
up; `ruby_encodings` keeps all of `enc/` when the image's files are not the ones
named here.

The data comes from `scripts/ruby-encodings/table.rb` (JSON, written out as the two
tables below), run by the Ruby whose tables these are
(`docker run --rm -i IMAGE ruby < scripts/ruby-encodings/table.rb`); checked with
`verify.rb` beside it, which runs every name and the common conversions and lists
any library Ruby loaded that the tables would drop.
"""

from __future__ import annotations

# name<TAB>the encoding Ruby gives it<TAB>the enc/ libraries `Encoding.find` loads
_NAMES = """\
ASCII-8BIT	ASCII-8BIT
UTF-8	UTF-8
US-ASCII	US-ASCII
UTF-16BE	UTF-16BE	utf_16be
UTF-16LE	UTF-16LE	utf_16le
UTF-32BE	UTF-32BE	utf_32be
UTF-32LE	UTF-32LE	utf_32le
UTF-16	UTF-16	utf_16be
UTF-32	UTF-32	utf_32be
UTF8-MAC	UTF8-MAC
EUC-JP	EUC-JP	euc_jp
Windows-31J	Windows-31J	windows_31j
Big5	Big5	big5
Big5-HKSCS	Big5-HKSCS	big5
Big5-UAO	Big5-UAO	big5
CESU-8	CESU-8	cesu_8
CP949	CP949	cp949
Emacs-Mule	Emacs-Mule	emacs_mule
EUC-KR	EUC-KR	euc_kr
EUC-TW	EUC-TW	euc_tw
GB18030	GB18030	gb18030
GBK	GBK	gbk
ISO-8859-1	ISO-8859-1	iso_8859_1
ISO-8859-2	ISO-8859-2	iso_8859_2
ISO-8859-3	ISO-8859-3	iso_8859_3
ISO-8859-4	ISO-8859-4	iso_8859_4
ISO-8859-5	ISO-8859-5	iso_8859_5
ISO-8859-6	ISO-8859-6	iso_8859_6
ISO-8859-7	ISO-8859-7	iso_8859_7
ISO-8859-8	ISO-8859-8	iso_8859_8
ISO-8859-9	ISO-8859-9	iso_8859_9
ISO-8859-10	ISO-8859-10	iso_8859_10
ISO-8859-11	ISO-8859-11	iso_8859_11
ISO-8859-13	ISO-8859-13	iso_8859_13
ISO-8859-14	ISO-8859-14	iso_8859_14
ISO-8859-15	ISO-8859-15	iso_8859_15
ISO-8859-16	ISO-8859-16	iso_8859_16
KOI8-R	KOI8-R	koi8_r
KOI8-U	KOI8-U	koi8_u
Shift_JIS	Shift_JIS	shift_jis
Windows-1250	Windows-1250	windows_1250
Windows-1251	Windows-1251	windows_1251
Windows-1252	Windows-1252	windows_1252
Windows-1253	Windows-1253	windows_1253
Windows-1254	Windows-1254	windows_1254
Windows-1257	Windows-1257	windows_1257
BINARY	ASCII-8BIT
IBM437	IBM437
CP437	IBM437
IBM720	IBM720
CP720	IBM720
IBM737	IBM737
CP737	IBM737
IBM775	IBM775
CP775	IBM775
CP850	CP850
IBM850	CP850
IBM852	IBM852
CP852	CP852
IBM855	IBM855
CP855	CP855
IBM857	IBM857
CP857	IBM857
IBM860	IBM860
CP860	IBM860
IBM861	IBM861
CP861	IBM861
IBM862	IBM862
CP862	IBM862
IBM863	IBM863
CP863	IBM863
IBM864	IBM864
CP864	IBM864
IBM865	IBM865
CP865	IBM865
IBM866	IBM866
CP866	IBM866
IBM869	IBM869
CP869	IBM869
Windows-1258	Windows-1258
CP1258	Windows-1258
GB1988	GB1988
macCentEuro	macCentEuro
macCroatian	macCroatian
macCyrillic	macCyrillic
macGreek	macGreek
macIceland	macIceland
macRoman	macRoman
macRomania	macRomania
macThai	macThai
macTurkish	macTurkish
macUkraine	macUkraine
CP950	CP950	big5
Big5-HKSCS:2008	Big5-HKSCS	big5
CP951	CP951	big5
IBM037	IBM037
ebcdic-cp-us	IBM037
stateless-ISO-2022-JP	stateless-ISO-2022-JP	emacs_mule
eucJP	EUC-JP	euc_jp
eucJP-ms	eucJP-ms	euc_jp
euc-jp-ms	eucJP-ms	euc_jp
CP51932	CP51932	euc_jp
EUC-JIS-2004	EUC-JIS-2004	euc_jp
EUC-JISX0213	EUC-JIS-2004	euc_jp
eucKR	EUC-KR	euc_kr
eucTW	EUC-TW	euc_tw
GB2312	GB2312	euc_kr
EUC-CN	GB2312	euc_kr
eucCN	GB2312	euc_kr
GB12345	GB12345	euc_kr
CP936	GBK	gbk
ISO-2022-JP	ISO-2022-JP
ISO2022-JP	ISO-2022-JP
ISO-2022-JP-2	ISO-2022-JP-2
ISO2022-JP2	ISO-2022-JP-2
CP50220	CP50220
CP50221	CP50221
ISO8859-1	ISO-8859-1	iso_8859_1
ISO8859-2	ISO-8859-2	iso_8859_2
ISO8859-3	ISO-8859-3	iso_8859_3
ISO8859-4	ISO-8859-4	iso_8859_4
ISO8859-5	ISO-8859-5	iso_8859_5
ISO8859-6	ISO-8859-6	iso_8859_6
Windows-1256	Windows-1256	iso_8859_6
CP1256	Windows-1256	iso_8859_6
ISO8859-7	ISO-8859-7	iso_8859_7
ISO8859-8	ISO-8859-8	iso_8859_8
Windows-1255	Windows-1255	iso_8859_8
CP1255	Windows-1255	iso_8859_8
ISO8859-9	ISO-8859-9	iso_8859_9
ISO8859-10	ISO-8859-10	iso_8859_10
ISO8859-11	ISO-8859-11	iso_8859_11
TIS-620	TIS-620	iso_8859_11
Windows-874	Windows-874	iso_8859_11
CP874	Windows-874	iso_8859_11
ISO8859-13	ISO-8859-13	iso_8859_13
ISO8859-14	ISO-8859-14	iso_8859_14
ISO8859-15	ISO-8859-15	iso_8859_15
ISO8859-16	ISO-8859-16	iso_8859_16
CP878	KOI8-R	koi8_r
MacJapanese	MacJapanese	shift_jis
MacJapan	MacJapanese	shift_jis
ASCII	US-ASCII
ANSI_X3.4-1968	US-ASCII
646	US-ASCII
UTF-7	UTF-7
CP65000	UTF-7
CP65001	UTF-8
UTF-8-MAC	UTF8-MAC
UTF-8-HFS	UTF8-MAC
UCS-2BE	UTF-16BE	utf_16be
UCS-4BE	UTF-32BE	utf_32be
UCS-4LE	UTF-32LE	utf_32le
CP932	Windows-31J	windows_31j
csWindows31J	Windows-31J	windows_31j
SJIS	Windows-31J	windows_31j
PCK	Windows-31J	windows_31j
CP1250	Windows-1250	windows_1250
CP1251	Windows-1251	windows_1251
CP1252	Windows-1252	windows_1252
CP1253	Windows-1253	windows_1253
CP1254	Windows-1254	windows_1254
CP1257	Windows-1257	windows_1257
UTF8-DoCoMo	UTF8-DoCoMo
SJIS-DoCoMo	SJIS-DoCoMo	windows_31j
UTF8-KDDI	UTF8-KDDI
SJIS-KDDI	SJIS-KDDI	windows_31j
ISO-2022-JP-KDDI	ISO-2022-JP-KDDI
stateless-ISO-2022-JP-KDDI	stateless-ISO-2022-JP-KDDI	emacs_mule
UTF8-SoftBank	UTF8-SoftBank
SJIS-SoftBank	SJIS-SoftBank	windows_31j
"""
# source<TAB>destination<TAB>the libraries a direct conversion loads
_TRANSCODERS = """\
ASCII-8BIT	UTF-8	trans/single_byte
UTF-8	ASCII-8BIT	trans/single_byte
UTF-8	US-ASCII	trans/single_byte
UTF-8	UTF-16BE	utf_16be trans/utf_16_32
UTF-8	UTF-16LE	utf_16le trans/utf_16_32
UTF-8	UTF-32BE	utf_32be trans/utf_16_32
UTF-8	UTF-32LE	utf_32le trans/utf_16_32
UTF-8	UTF-16	utf_16be trans/utf_16_32
UTF-8	UTF-32	utf_32be trans/utf_16_32
UTF-8	UTF8-MAC	trans/utf8_mac
UTF-8	EUC-JP	euc_jp trans/japanese_euc
UTF-8	Windows-31J	windows_31j trans/japanese_sjis
UTF-8	Big5	big5 trans/big5
UTF-8	Big5-HKSCS	big5 trans/big5
UTF-8	Big5-UAO	big5 trans/big5
UTF-8	CESU-8	cesu_8 trans/cesu_8
UTF-8	CP949	cp949 trans/korean
UTF-8	EUC-KR	euc_kr trans/korean
UTF-8	GB18030	gb18030 trans/gb18030
UTF-8	GBK	gbk trans/gbk
UTF-8	ISO-8859-1	iso_8859_1 trans/single_byte
UTF-8	ISO-8859-2	iso_8859_2 trans/single_byte
UTF-8	ISO-8859-3	iso_8859_3 trans/single_byte
UTF-8	ISO-8859-4	iso_8859_4 trans/single_byte
UTF-8	ISO-8859-5	iso_8859_5 trans/single_byte
UTF-8	ISO-8859-6	iso_8859_6 trans/single_byte
UTF-8	ISO-8859-7	iso_8859_7 trans/single_byte
UTF-8	ISO-8859-8	iso_8859_8 trans/single_byte
UTF-8	ISO-8859-9	iso_8859_9 trans/single_byte
UTF-8	ISO-8859-10	iso_8859_10 trans/single_byte
UTF-8	ISO-8859-11	iso_8859_11 trans/single_byte
UTF-8	ISO-8859-13	iso_8859_13 trans/single_byte
UTF-8	ISO-8859-14	iso_8859_14 trans/single_byte
UTF-8	ISO-8859-15	iso_8859_15 trans/single_byte
UTF-8	ISO-8859-16	iso_8859_16 trans/single_byte
UTF-8	KOI8-R	koi8_r trans/single_byte
UTF-8	KOI8-U	koi8_u trans/single_byte
UTF-8	Shift_JIS	shift_jis trans/japanese_sjis
UTF-8	Windows-1250	windows_1250 trans/single_byte
UTF-8	Windows-1251	windows_1251 trans/single_byte
UTF-8	Windows-1252	windows_1252 trans/single_byte
UTF-8	Windows-1253	windows_1253 trans/single_byte
UTF-8	Windows-1254	windows_1254 trans/single_byte
UTF-8	Windows-1257	windows_1257 trans/single_byte
UTF-8	IBM437	trans/single_byte
UTF-8	IBM720	trans/single_byte
UTF-8	IBM737	trans/single_byte
UTF-8	IBM775	trans/single_byte
UTF-8	CP850	trans/single_byte
UTF-8	IBM852	trans/single_byte
UTF-8	CP852	trans/single_byte
UTF-8	IBM855	trans/single_byte
UTF-8	CP855	trans/single_byte
UTF-8	IBM857	trans/single_byte
UTF-8	IBM860	trans/single_byte
UTF-8	IBM861	trans/single_byte
UTF-8	IBM862	trans/single_byte
UTF-8	IBM863	trans/single_byte
UTF-8	IBM865	trans/single_byte
UTF-8	IBM866	trans/single_byte
UTF-8	IBM869	trans/single_byte
UTF-8	macCroatian	trans/single_byte
UTF-8	macCyrillic	trans/single_byte
UTF-8	macGreek	trans/single_byte
UTF-8	macIceland	trans/single_byte
UTF-8	macRoman	trans/single_byte
UTF-8	macRomania	trans/single_byte
UTF-8	macTurkish	trans/single_byte
UTF-8	macUkraine	trans/single_byte
UTF-8	CP950	big5 trans/big5
UTF-8	CP951	big5 trans/big5
UTF-8	eucJP-ms	euc_jp trans/japanese_euc
UTF-8	CP51932	euc_jp trans/japanese_euc
UTF-8	EUC-JIS-2004	euc_jp trans/japanese_euc
UTF-8	GB2312	euc_kr trans/chinese
UTF-8	GB12345	euc_kr trans/chinese
UTF-8	Windows-1256	iso_8859_6 trans/single_byte
UTF-8	Windows-1255	iso_8859_8 trans/single_byte
UTF-8	TIS-620	iso_8859_11 trans/single_byte
UTF-8	Windows-874	iso_8859_11 trans/single_byte
UTF-8	UTF8-DoCoMo	trans/emoji
UTF-8	UTF8-KDDI	trans/emoji
UTF-8	UTF8-SoftBank	trans/emoji
US-ASCII	UTF-8	trans/single_byte
UTF-16BE	UTF-8	utf_16be trans/utf_16_32
UTF-16LE	UTF-8	utf_16le trans/utf_16_32
UTF-32BE	UTF-8	utf_32be trans/utf_16_32
UTF-32LE	UTF-8	utf_32le trans/utf_16_32
UTF-16	UTF-8	utf_16be trans/utf_16_32
UTF-32	UTF-8	utf_32be trans/utf_16_32
UTF8-MAC	UTF-8	trans/utf8_mac
EUC-JP	UTF-8	euc_jp trans/japanese_euc
EUC-JP	Shift_JIS	euc_jp shift_jis trans/japanese
EUC-JP	stateless-ISO-2022-JP	euc_jp emacs_mule trans/iso2022
Windows-31J	UTF-8	windows_31j trans/japanese_sjis
Big5	UTF-8	big5 trans/big5
Big5-HKSCS	UTF-8	big5 trans/big5
Big5-UAO	UTF-8	big5 trans/big5
CESU-8	UTF-8	cesu_8 trans/cesu_8
CP949	UTF-8	cp949 trans/korean
EUC-KR	UTF-8	euc_kr trans/korean
GB18030	UTF-8	gb18030 trans/gb18030
GBK	UTF-8	gbk trans/gbk
ISO-8859-1	UTF-8	iso_8859_1 trans/single_byte
ISO-8859-1	IBM037	iso_8859_1 trans/ebcdic
ISO-8859-2	UTF-8	iso_8859_2 trans/single_byte
ISO-8859-3	UTF-8	iso_8859_3 trans/single_byte
ISO-8859-4	UTF-8	iso_8859_4 trans/single_byte
ISO-8859-5	UTF-8	iso_8859_5 trans/single_byte
ISO-8859-6	UTF-8	iso_8859_6 trans/single_byte
ISO-8859-7	UTF-8	iso_8859_7 trans/single_byte
ISO-8859-8	UTF-8	iso_8859_8 trans/single_byte
ISO-8859-9	UTF-8	iso_8859_9 trans/single_byte
ISO-8859-10	UTF-8	iso_8859_10 trans/single_byte
ISO-8859-11	UTF-8	iso_8859_11 trans/single_byte
ISO-8859-13	UTF-8	iso_8859_13 trans/single_byte
ISO-8859-14	UTF-8	iso_8859_14 trans/single_byte
ISO-8859-15	UTF-8	iso_8859_15 trans/single_byte
ISO-8859-16	UTF-8	iso_8859_16 trans/single_byte
KOI8-R	UTF-8	koi8_r trans/single_byte
KOI8-U	UTF-8	koi8_u trans/single_byte
Shift_JIS	UTF-8	shift_jis trans/japanese_sjis
Shift_JIS	EUC-JP	shift_jis euc_jp trans/japanese
Windows-1250	UTF-8	windows_1250 trans/single_byte
Windows-1251	UTF-8	windows_1251 trans/single_byte
Windows-1252	UTF-8	windows_1252 trans/single_byte
Windows-1253	UTF-8	windows_1253 trans/single_byte
Windows-1254	UTF-8	windows_1254 trans/single_byte
Windows-1257	UTF-8	windows_1257 trans/single_byte
IBM437	UTF-8	trans/single_byte
IBM720	UTF-8	trans/single_byte
IBM737	UTF-8	trans/single_byte
IBM775	UTF-8	trans/single_byte
CP850	UTF-8	trans/single_byte
IBM852	UTF-8	trans/single_byte
CP852	UTF-8	trans/single_byte
IBM855	UTF-8	trans/single_byte
CP855	UTF-8	trans/single_byte
IBM857	UTF-8	trans/single_byte
IBM860	UTF-8	trans/single_byte
IBM861	UTF-8	trans/single_byte
IBM862	UTF-8	trans/single_byte
IBM863	UTF-8	trans/single_byte
IBM865	UTF-8	trans/single_byte
IBM866	UTF-8	trans/single_byte
IBM869	UTF-8	trans/single_byte
macCroatian	UTF-8	trans/single_byte
macCyrillic	UTF-8	trans/single_byte
macGreek	UTF-8	trans/single_byte
macIceland	UTF-8	trans/single_byte
macRoman	UTF-8	trans/single_byte
macRomania	UTF-8	trans/single_byte
macTurkish	UTF-8	trans/single_byte
macUkraine	UTF-8	trans/single_byte
CP950	UTF-8	big5 trans/big5
CP951	UTF-8	big5 trans/big5
IBM037	ISO-8859-1	iso_8859_1 trans/ebcdic
stateless-ISO-2022-JP	EUC-JP	emacs_mule euc_jp trans/iso2022
stateless-ISO-2022-JP	ISO-2022-JP	emacs_mule trans/iso2022
eucJP-ms	UTF-8	euc_jp trans/japanese_euc
CP51932	UTF-8	euc_jp trans/japanese_euc
CP51932	CP50220	euc_jp trans/iso2022
CP51932	CP50221	euc_jp trans/iso2022
EUC-JIS-2004	UTF-8	euc_jp trans/japanese_euc
GB2312	UTF-8	euc_kr trans/chinese
GB12345	UTF-8	euc_kr trans/chinese
ISO-2022-JP	stateless-ISO-2022-JP	emacs_mule trans/iso2022
CP50220	CP51932	euc_jp trans/iso2022
CP50221	CP51932	euc_jp trans/iso2022
Windows-1256	UTF-8	iso_8859_6 trans/single_byte
Windows-1255	UTF-8	iso_8859_8 trans/single_byte
TIS-620	UTF-8	iso_8859_11 trans/single_byte
Windows-874	UTF-8	iso_8859_11 trans/single_byte
UTF8-DoCoMo	UTF-8	trans/emoji
UTF8-DoCoMo	SJIS-DoCoMo	windows_31j trans/emoji_sjis_docomo
UTF8-DoCoMo	UTF8-KDDI	trans/emoji
UTF8-DoCoMo	UTF8-SoftBank	trans/emoji
SJIS-DoCoMo	UTF8-DoCoMo	windows_31j trans/emoji_sjis_docomo
UTF8-KDDI	UTF-8	trans/emoji
UTF8-KDDI	UTF8-DoCoMo	trans/emoji
UTF8-KDDI	SJIS-KDDI	windows_31j trans/emoji_sjis_kddi
UTF8-KDDI	stateless-ISO-2022-JP-KDDI	emacs_mule trans/emoji_iso2022_kddi
UTF8-KDDI	UTF8-SoftBank	trans/emoji
SJIS-KDDI	UTF8-KDDI	windows_31j trans/emoji_sjis_kddi
ISO-2022-JP-KDDI	stateless-ISO-2022-JP-KDDI	emacs_mule trans/emoji_iso2022_kddi
stateless-ISO-2022-JP-KDDI	UTF8-KDDI	emacs_mule trans/emoji_iso2022_kddi
stateless-ISO-2022-JP-KDDI	ISO-2022-JP-KDDI	emacs_mule trans/emoji_iso2022_kddi
UTF8-SoftBank	UTF-8	trans/emoji
UTF8-SoftBank	UTF8-DoCoMo	trans/emoji
UTF8-SoftBank	UTF8-KDDI	trans/emoji
UTF8-SoftBank	SJIS-SoftBank	windows_31j trans/emoji_sjis_softbank
SJIS-SoftBank	UTF8-SoftBank	windows_31j trans/emoji_sjis_softbank
"""


def _libs(field: str) -> tuple[str, ...]:
    return tuple(f"{n}.so" for n in field.split())


def _name_rows() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = (line.split("\t") + [""] for line in _NAMES.splitlines())
    return {r[0].lower(): (r[1], _libs(r[2])) for r in rows}


def _transcoder_rows() -> dict[tuple[str, str], tuple[str, ...]]:
    rows = (line.split("\t") for line in _TRANSCODERS.splitlines())
    return {(r[0], r[1]): _libs(r[2]) for r in rows}


# Ruby looks names up ignoring case: lower-cased name -> (encoding, libraries).
NAMES = _name_rows()
# (source, destination) encoding -> libraries of that direct transcoder.
TRANSCODERS = _transcoder_rows()
# Libraries Ruby 3.1 ships that no name loads: `encdb.so` declares GB2312 a
# replica of EUC-KR, so `Encoding.find("GB2312")` loads euc_kr.so, not gb2312.so.
UNLOADED = frozenset({"gb2312.so"})
