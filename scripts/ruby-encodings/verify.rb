# encoding: utf-8
require 'json'
def loaded = $LOADED_FEATURES.grep(%r{/enc/}).map { |f| f[%r{/enc/(.*)}, 1] } - ["encdb.so", "trans/transdb.so"]
def in_child
  r, w = IO.pipe
  pid = fork { r.close; w.write(JSON.dump(yield)); w.close; exit!(0) }
  w.close; out = r.read; Process.wait(pid); JSON.parse(out)
end
out = {}
(Encoding.name_list - %w[external internal locale filesystem]).each do |n|
  out[n] = in_child do
    Encoding.find(n)
    [[n, "UTF-8"], ["UTF-8", n]].each { |a, b| Encoding::Converter.new(a, b) rescue nil }
    loaded
  end
end
pairs = [%w[Shift_JIS EUC-JP], %w[EUC-JP Shift_JIS], %w[CP932 EUC-JP], %w[ISO-2022-JP EUC-JP], %w[ISO-8859-1 Windows-1252],
 %w[Windows-1252 ISO-8859-15], %w[UTF-16LE ISO-8859-1], %w[GBK GB18030], %w[Big5 UTF-16], %w[EUC-KR CP949], %w[KOI8-R Windows-1251],
 %w[Shift_JIS UTF-16LE], %w[CP50221 Shift_JIS], %w[IBM437 ISO-8859-1], %w[SJIS-DoCoMo UTF8-DoCoMo], %w[UTF-8-MAC Shift_JIS]]
pairs.each { |a, b| out["#{a}>#{b}"] = in_child { (Encoding::Converter.new(a, b) rescue p($!)); loaded } }
out["xml"] = in_child { "<a>é".encode("UTF-8", xml: :text); "é".encode("ISO-8859-1", xml: :attr); loaded }
out["ascii-only encode"] = in_child { "abc".encode("Shift_JIS"); loaded }
out["nonascii encode"] = in_child { "héllo".encode("ISO-8859-1"); loaded }
out["nonascii encode2"] = in_child { "日本".encode("Shift_JIS", "UTF-8"); loaded }
out["mode"] = in_child { File.open("/etc/hostname", "r:iso-8859-1:utf-8") { |f| f.read }; loaded }
puts JSON.dump(out)
