#!/usr/bin/env node
/**
 * Test-only peer: the real TypeScript PuppetServer (wechaty-puppet-service) wrapping PuppetMock,
 * listening on 127.0.0.1 without TLS, driven through stdin and reporting on stdout.
 *
 *   node server.mjs --port 18788 --token test-token
 *
 * stdin, one JSON object per line:
 *   {"cmd": "say", "from": "<contact id>", "text": "...", "room": "<room id>"?, "mention": ["<id>", ...]?}
 *       a contact says something to the bot (1:1) or in a room; answers {"event": "said", "id": ...}
 *   {"cmd": "redeliver", "id": "<message id>"}     emit the same message event again
 *   {"cmd": "bye"}                                   stop the server and exit
 * stdout, one JSON object per line:
 *   {"event": "listening", "port": N, "bot": "<bot id>"}
 *   {"event": "start"}                               the client's Start RPC reached the puppet
 *   {"event": "login", "id": "<bot id>"}             the bot logged in (after the client's Stop/Start)
 *   {"event": "sent", "conversation": ..., "room": ..., "text": ..., "mention": [...], "id": ...}
 *       a message whose talker is the bot: what the client sent (mention ids as received by the server)
 *   {"event": "error", "error": "..."}
 * Contacts: bot "bot-id" (name 反诈助手), "alice-id" (Alice), "bob-id" (Bob);
 * room "10001@chatroom" (topic 反诈测试群, owner alice, members bot/alice/bob).
 * Room ids contain '@' so that PuppetMock routes sends to the room.
 */
import readline from 'node:readline'
import { parseArgs } from 'node:util'

import { PuppetServer } from 'wechaty-puppet-service'
import { PuppetMock, mock } from 'wechaty-puppet-mock'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '18788' },
    token: { type: 'string', default: 'test-token' },
  },
})

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })

const BOT_ID = 'bot-id'
const bot = mocker.createContact({ id: BOT_ID, name: '反诈助手' })
const contacts = {
  [BOT_ID]: bot,
  'alice-id': mocker.createContact({ id: 'alice-id', name: 'Alice' }),
  'bob-id': mocker.createContact({ id: 'bob-id', name: 'Bob' }),
}
const room = mocker.createRoom({
  id: '10001@chatroom',
  topic: '反诈测试群',
  ownerId: 'alice-id',
  adminIdList: [],
  memberIdList: [BOT_ID, 'alice-id', 'bob-id'],
})
const rooms = { [room.id]: room }

// Remember the mention ids the server received, to report them with the echoed message.
const pendingMentions = new Map()
const origSendText = puppet.messageSendText.bind(puppet)
puppet.messageSendText = async (conversationId, text, mentionIdList) => {
  const list = pendingMentions.get(conversationId) || []
  list.push(mentionIdList || [])
  pendingMentions.set(conversationId, list)
  return origSendText(conversationId, text, mentionIdList)
}

// Log in only after the client's Stop/Start (Stop logs the mock out).
const origStart = puppet.start.bind(puppet)
puppet.start = async (...args) => {
  const ret = await origStart(...args)
  out({ event: 'start' })
  setTimeout(() => {
    if (!puppet.isLoggedIn) {
      mocker.login(bot)
    }
  }, 50)
  return ret
}

puppet.on('login', (payload) => out({ event: 'login', id: payload.contactId }))
puppet.on('message', async ({ messageId }) => {
  try {
    const payload = await puppet.messagePayload(messageId)
    const talker = payload.talkerId || payload.fromId
    if (talker !== BOT_ID) {
      return
    }
    const conversation = payload.roomId || payload.listenerId || payload.toId
    const queue = pendingMentions.get(conversation) || []
    out({
      conversation,
      event: 'sent',
      id: messageId,
      mention: queue.shift() || [],
      room: payload.roomId || null,
      text: payload.text,
    })
  } catch (e) {
    out({ error: String(e), event: 'error' })
  }
})

const server = new PuppetServer({
  endpoint: `127.0.0.1:${values.port}`,
  puppet,
  tls: { disable: true },
  token: values.token,
})

function handle (line) {
  const cmd = JSON.parse(line)
  switch (cmd.cmd) {
    case 'say': {
      const talker = contacts[cmd.from]
      if (!talker) throw new Error('unknown contact ' + cmd.from)
      const target = cmd.room ? rooms[cmd.room] : bot
      if (!target) throw new Error('unknown room ' + cmd.room)
      const mentions = (cmd.mention || []).map((id) => contacts[id])
      // ContactMock.say() emits the message event synchronously: catch its id from the event.
      let said
      const grab = ({ messageId }) => { said = said || messageId }
      puppet.once('message', grab)
      talker.say(cmd.text, mentions).to(target)
      puppet.off('message', grab)
      out({ event: 'said', id: said })
      break
    }
    case 'redeliver':
      puppet.emit('message', { messageId: cmd.id })
      out({ event: 'redelivered', id: cmd.id })
      break
    case 'bye':
      shutdown(0)
      break
    default:
      throw new Error('unknown cmd ' + cmd.cmd)
  }
}

let stopping = false
async function shutdown (code) {
  if (stopping) return
  stopping = true
  try {
    await server.stop()
  } catch (e) {
    // the server may already be half down; exit anyway
  }
  process.exit(code)
}

process.on('SIGTERM', () => shutdown(0))
process.on('SIGINT', () => shutdown(0))

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return
  try {
    handle(line)
  } catch (e) {
    out({ error: String(e && e.message ? e.message : e), event: 'error' })
  }
}).on('close', () => shutdown(0))

await server.start()
out({ bot: BOT_ID, event: 'listening', port: Number(values.port) })
