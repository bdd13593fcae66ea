"""The help page of ``Get-SmbSession`` (``-?``): the seed's SYNTAX block, examples,
pipeline input and exit codes. The parameters' descriptions live with their declarations
in :mod:`.get`."""

from __future__ import annotations

from .helptext import Example, HelpPage

SYNTAX = r"""
Get-SmbSession [[-SessionId] <UInt64[]>] [[-ClientComputerName] <String[]>] [[-ClientUserName] <String[]>]
 [[-ScopeName] <String[]>] [[-ClusterNodeName] <String[]>] [-IncludeHidden] [-SmbInstance <SmbInstance>]
 [-CimSession <CimSession[]>] [-ThrottleLimit <Int32>] [-AsJob] [<CommonParameters>]

smbsession's additions:
 [-SmbConf <String>] [-Source <auto|tdb|smbstatus>] [-Format <Table|List|Json|NDJson|Csv>] [-Json]
 [-Property <String[]>] [-Credential <String>] [-OperationTimeoutSec <Int32>]

<CommonParameters>: -Verbose, -Debug, -ErrorAction <Continue|SilentlyContinue|Stop|Ignore>
"""  # noqa: E501 (the seed's SYNTAX block, verbatim)

HELP = HelpPage(
    name="Get-SmbSession (also: smbsession get)",
    synopsis="Retrieves information about the SMB sessions that are currently established "
             "between the SMB server and the associated clients.",
    syntax=SYNTAX,
    description="Get-SmbSession lists the sessions of the local Samba server, with the "
                "properties of Windows' MSFT_SmbSession objects. Reading a real server needs "
                "root, as smbstatus does. Parameter names are case-insensitive and may be "
                "shortened to any unambiguous prefix (-sess); GNU spellings work too "
                "(--session-id 5, --client-user-name bob, --format json, --json). Lists are "
                "written 1,2,3 or 1, 2, 3. Every filter is an exact match, without wildcards. "
                "In a Unix shell, quote what the shell would change: '*', 'LAB\\bob', "
                "-IncludeHidden:'$false'.",
    examples=(
        Example("Get session information", "Get-SmbSession",
                         "Lists the sessions currently established with the server's clients."),
        Example("Get information for a specific session",
                         "Get-SmbSession -SessionId 8813272891621",
                         "Lists the session with the id 8813272891621."),
        Example("Get session information for a specific client",
                         "Get-SmbSession -ClientComputerName 192.168.102.14",
                         "Lists the sessions of the client at the address 192.168.102.14."),
        Example("Get session information for a client",
                         "Get-SmbSession -ClientUserName 'Contoso\\Contoso-HV1$'",
                         "Lists the sessions of the user Contoso\\Contoso-HV1$ (quote a name "
                         "with a backslash or a $ in a Unix shell)."),
        Example("Get all information for a session",
                         "Get-SmbSession -SessionId 8813272891441 -Property '*'",
                         "Lists every property of the session, as PowerShell's "
                         "'| Select-Object -Property *' does."),
        Example("Pass sessions down a pipeline",
                         "Get-SmbSession -ClientUserName 'LAB\\bob' -Format Json | "
                         "Get-SmbSession -Format List",
                         "The second command binds SessionId, ClientComputerName, "
                         "ClientUserName, ScopeName, ClusterNodeName and SmbInstance from each "
                         "object the first one writes, and lists the same sessions."),
    ),
    sections=(
        ("PIPELINE INPUT", """
When stdin is a pipe or a file, it is read as the JSON or NDJSON that -Format Json or
-Format NDJson writes, and each object runs the command once with the parameters its
properties bind (by property name, as PowerShell binds them). A terminal, /dev/null or a
closed stdin is no pipeline input. An empty pipe, or [], holds no object and runs the
command zero times: nothing is printed. A script whose stdin is an idle pipe (cron,
ssh host cmd) should run Get-SmbSession </dev/null.
"""),
        ("EXIT CODES", """
0  success: every value asked for was found, every record was read.
1  partly or nothing: a value matched no session (an error names it, even when -ErrorAction
   hides it), records were skipped (a WARNING line says which), or the server could not
   be read (smbd not running, not root).
2  usage: a parameter or the pipeline input was wrong (the message names it); nothing ran.
"""),
    ),
)
