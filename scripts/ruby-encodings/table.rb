require 'json'
def loaded = $LOADED_FEATURES.grep(%r{/enc/}).map { |f| f[%r{/enc/(.*)\.so}, 1] } - ["encdb", "trans/transdb"]
def in_child
  r, w = IO.pipe
  pid = fork { r.close; w.write(JSON.dump(yield)); w.close; exit!(0) }
  w.close; out = r.read; Process.wait(pid); JSON.parse(out)
end
names = Encoding.name_list - %w[external internal locale filesystem]
found = {}
names.each do |n|
  found[n] = in_child { e = Encoding.find(n); [e.name, e.dummy?, loaded] }
end
canon = found.values.map(&:first).uniq
edges = {}
canon.each do |a|
  canon.each do |b|
    next if a == b
    res = in_child do
      path = Encoding::Converter.search_convpath(a, b) rescue nil
      path && path.size == 1 && path[0].is_a?(Array) ? [path.map { |x| x.map(&:name) }, loaded] : nil
    end
    edges["#{a}\t#{b}"] = res[1] if res
  end
end
puts JSON.pretty_generate({ "names" => found, "edges" => edges })
