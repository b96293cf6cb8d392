/// One line of a batch file (SPEC §5): `<id> <alias>,<alias>... <removed>,<removed>...\n`; full mode has no removed
/// column. Empty lists are empty strings.
enum BatchLine {
    static func append(
        id: ArraySlice<UInt8>, aliases: [UInt16], removed: [UInt16]?, catalog: AliasCatalog, to out: inout [UInt8]
    ) {
        out.append(contentsOf: id)
        out.append(0x20)
        appendList(aliases, catalog, &out)
        if let removed {
            out.append(0x20)
            appendList(removed, catalog, &out)
        }
        out.append(0x0A)
    }

    private static func appendList(_ list: [UInt16], _ catalog: AliasCatalog, _ out: inout [UInt8]) {
        for (i, number) in list.enumerated() {
            if i > 0 { out.append(0x2C) }
            out.append(contentsOf: catalog.aliasBytes[Int(number)])
        }
    }
}
